"""A test's handle on a process of the fork server (tests/forkserver.py): it asks the server for
the fork, hands it this process's stdin, stdout and stderr, relays the signals it gets to it,
writes its pid where asked, and exits as it exits (the same code, or killed by the same
signal). It dies with the process that started it (checked twice a second), and the server
then kills the fork. Standard library only, run with `python -I -S` so it starts in
milliseconds.

    python -I -S tests/trampoline.py SOCKET_PATH PID_FILE MODULE ARGV..."""

import contextlib
import json
import os
import select
import signal
import socket
import struct
import sys

RELAYED = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGCONT,
)


class Answers:
    """The server's lines (`pid N`, then `exit STATUS`), read while watching our parent."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buffer = b""
        self.parent = os.getppid()

    def line(self) -> list[bytes]:
        while b"\n" not in self.buffer:
            if not select.select([self.conn], [], [], 0.5)[0]:
                if os.getppid() != self.parent:  # whoever started us is gone: so are we
                    os._exit(1)
                continue
            more = self.conn.recv(256)
            if not more:
                return []
            self.buffer += more
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.split()


def main() -> None:
    path, pid_file, module, argv = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    fork: list[int] = []
    pending: list[int] = []

    def relay(sig: int, _frame: object) -> None:
        if not fork:
            pending.append(sig)
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(fork[0], sig)

    for sig in RELAYED:
        signal.signal(sig, relay)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    request = {"module": module, "argv": argv, "env": dict(os.environ), "cwd": os.getcwd()}
    body = json.dumps(request).encode()
    socket.send_fds(conn, [struct.pack("!I", len(body))], [0, 1, 2])
    conn.sendall(body)
    answers = Answers(conn)
    line = answers.line()
    if len(line) != 2 or line[0] != b"pid":
        sys.exit("trampoline: the fork server did not fork")
    fork.append(int(line[1]))
    with open(pid_file + ".new", "w") as handle:
        handle.write(str(fork[0]))
    os.replace(pid_file + ".new", pid_file)
    for sig in pending:
        relay(sig, None)
    line = answers.line()
    if len(line) != 2 or line[0] != b"exit":  # the server died, and its forks with it
        sys.exit(1)
    status = int(line[1])
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
