"""opsgraph's arq workers: the processes that execute tasks."""
