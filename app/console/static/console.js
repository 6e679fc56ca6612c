// opsgraph console: every view is a client of /graphql (HTTP for queries and mutations,
// graphql-transport-ws for subscriptions); it has no endpoint of its own. The documents it
// sends are in OPS below (tests/test_console_assets.py validates each against the schema).
(function () {
  "use strict";

  var KEY = "opsgraph.credential";
  var MAX_ROWS = 200; // a live list keeps a window of rows, never the whole history
  var view = document.getElementById("view");

  // --- the documents --------------------------------------------------------------------------
  var TASK_ROW = "id status taskType queue createdAt attempts costUsd dueAt origin { instance tenantId }";
  var OPS = {
    Viewer: /* graphql */ "query Viewer { viewer { subject role tenantId canOperate canAdmin canReadPlatform } }",
    Overview: /* graphql */ "query Overview { llmStats { totalQueued totalTokens totalCostUsd semaphoreStats { maxConcurrent activeCount } queues { queue queued running estimatedHuman } } alertSummary { critical warning info } }",
    OldestQueued: /* graphql */ "query OldestQueued($queue: [String!]) { tasks(first: 1, filter: { status: [QUEUED], queue: $queue }, orderBy: { field: CREATED_AT, direction: ASC }) { edges { node { createdAt } } } }",
    QueueStatsLive: /* graphql */ "subscription QueueStatsLive { queueStats { totalPending totalActive timestamp queues { name depth activeWorkers activeTasks avgWaitTimeMs tasksCompletedLastHour } } }",
    WorkersLive: /* graphql */ "subscription WorkersLive { workersChanged { totalWorkers workers { name queues activeTasks concurrency utilizationPct lastSeen } } }",
    Tasks: /* graphql */ "query Tasks($first: Int, $after: String, $filter: TaskFilter) { tasks(first: $first, after: $after, filter: $filter, orderBy: { field: CREATED_AT, direction: DESC }) { totalCount pageInfo { hasNextPage endCursor } edges { node { " + TASK_ROW + " } } } }",
    TaskLive: /* graphql */ "subscription TaskLive($queue: String, $status: [TaskStatus!]) { taskUpdated(queue: $queue, status: $status) { " + TASK_ROW + " } }",
    TaskDetail: /* graphql */ "query TaskDetail($id: UUID!) { task(id: $id) { " + TASK_ROW + " operation attempts maxAttempts errors inputTokens outputTokens costUsd latencyMs model result transitions { fromStatus toStatus at reason } logs { at level message } parent { id taskType } children { id taskType status } runAt dueAt concurrencyKey concurrencyLimit rateKey rateLimit } }",
    TaskDetailLive: /* graphql */ "subscription TaskDetailLive($id: UUID!) { taskUpdated(id: $id) { id status attempts errors costUsd } }",
    TaskTypes: /* graphql */ "query TaskTypes { taskTypes { name builtin queue description inputSchema serving } }",
    SubmitTask: /* graphql */ "mutation SubmitTask($input: SubmitTaskInput!) { submitTask(input: $input) { task { id status } errors { field code message } } }",
    CancelTask: /* graphql */ "mutation CancelTask($id: UUID!) { cancelTask(input: { id: $id }) { task { id status } errors { code message } } }",
    RetryTask: /* graphql */ "mutation RetryTask($id: UUID!) { retryTask(input: { id: $id }) { task { id status } errors { code message } } }",
    Workflows: /* graphql */ "query Workflows { workflows(first: 50) { edges { node { id name status completedSteps totalSteps createdAt } } } }",
    Workflow: /* graphql */ "query Workflow($id: UUID!) { workflow(id: $id) { id name status progress steps { stepId taskType status dependencies errorMessage kind waitUntil } } }",
    ApproveStep: /* graphql */ "mutation ApproveStep($workflowId: UUID!, $stepId: String!, $note: String) { approveStep(workflowId: $workflowId, stepId: $stepId, note: $note) { workflow { id status } errors { code message } } }",
    RejectStep: /* graphql */ "mutation RejectStep($workflowId: UUID!, $stepId: String!, $note: String) { rejectStep(workflowId: $workflowId, stepId: $stepId, note: $note) { workflow { id status } errors { code message } } }",
    Schedules: /* graphql */ "query Schedules { schedules { id name cron timezone taskType paused overlap catchUp nextFireAt lastFireAt runs(limit: 1) { outcome fireTime } } }",
    ScheduleChanged: /* graphql */ "subscription ScheduleChanged { scheduleChanged { id } }",
    CreateSchedule: /* graphql */ "mutation CreateSchedule($input: CreateScheduleInput!) { createSchedule(input: $input) { schedule { id } errors { field code message } } }",
    PauseSchedule: /* graphql */ "mutation PauseSchedule($id: UUID!) { pauseSchedule(id: $id) { schedule { id paused } errors { code message } } }",
    ResumeSchedule: /* graphql */ "mutation ResumeSchedule($id: UUID!) { resumeSchedule(id: $id) { schedule { id paused } errors { code message } } }",
    TriggerSchedule: /* graphql */ "mutation TriggerSchedule($id: UUID!) { triggerSchedule(id: $id) { run { outcome } errors { code message } } }",
    WorkflowLive: /* graphql */ "subscription WorkflowLive($id: UUID!) { workflowUpdated(id: $id) { id status progress steps { stepId status } } }",
    PauseWorkflow: /* graphql */ "mutation PauseWorkflow($id: UUID!) { pauseWorkflow(input: { id: $id }) { workflow { id status } errors { code message } } }",
    ResumeWorkflow: /* graphql */ "mutation ResumeWorkflow($id: UUID!) { resumeWorkflow(input: { id: $id }) { workflow { id status } errors { code message } } }",
    RetryWorkflow: /* graphql */ "mutation RetryWorkflow($id: UUID!) { retryWorkflow(input: { id: $id }) { workflow { id status } errors { code message } } }",
    Pipeline: /* graphql */ "query Pipeline { cameras { cameraId images lastImageAt aggregatingBatches } activeBatches { batchId cameraId status detectionCount startedAt lastActivityAt dueAt } securityEvents(first: 20) { edges { node { id cameraId riskScore riskLevel summary createdAt detections(first: 4) { id detectionType thumbnail(size: 96) } } } } }",
    BatchLive: /* graphql */ "subscription BatchLive { batchUpdated { batchId status } }",
    EventsLive: /* graphql */ "subscription EventsLive { securityEvents { id } }",
    FlushBatch: /* graphql */ "mutation FlushBatch($batchId: String!) { flushBatch(batchId: $batchId) { batch { batchId status } errors { code message } } }",
    Dlq: /* graphql */ "query Dlq { dlqStats { totalCount queues { queueName queue count } } }",
    DlqJobs: /* graphql */ "query DlqJobs($queue: String!) { dlqJobs(queue: $queue, limit: 50) { taskId error attemptCount lastFailedAt } }",
    DlqLive: /* graphql */ "subscription DlqLive { dlqChanged { totalCount } }",
    RequeueOne: /* graphql */ "mutation RequeueOne($queue: String!) { requeueDlqJob(queue: $queue) { requeuedCount taskIds errors { code message } } }",
    RequeueAll: /* graphql */ "mutation RequeueAll($queue: String!) { requeueAllDlqJobs(queue: $queue) { requeuedCount errors { code message } } }",
    ClearDlq: /* graphql */ "mutation ClearDlq($queue: String!) { clearDlq(queue: $queue) { clearedCount errors { code message } } }",
    Jobs: /* graphql */ "query Jobs { jobs(first: 50) { edges { node { id jobType status progress createdAt completedAt errorMessage } } } }",
    JobLive: /* graphql */ "subscription JobLive($id: UUID!) { jobProgress(id: $id) { id status progress errorMessage } }",
    CancelJob: /* graphql */ "mutation CancelJob($id: UUID!) { cancelJob(id: $id) { job { id status } errors { code message } } }",
    AbortJob: /* graphql */ "mutation AbortJob($id: UUID!) { abortJob(id: $id) { job { id status } errors { code message } } }",
    Agents: /* graphql */ "query Agents { agents(first: 100) { edges { node { id name type status desiredState replicas lastHeartbeat tenantId } } } }",
    AgentsLive: /* graphql */ "subscription AgentsLive { agentStatusChanged { agentId status } }",
    PauseAgent: /* graphql */ "mutation PauseAgent($id: String!) { pauseAgent(id: $id) { desiredState errors { code message } } }",
    ResumeAgent: /* graphql */ "mutation ResumeAgent($id: String!) { resumeAgent(id: $id) { desiredState errors { code message } } }",
    RestartAgent: /* graphql */ "mutation RestartAgent($id: String!) { restartAgent(id: $id) { desiredState errors { code message } } }",
    ScaleAgent: /* graphql */ "mutation ScaleAgent($id: String!, $replicas: Int!) { scaleAgent(id: $id, replicas: $replicas) { replicas errors { code message } } }",
    Alerts: /* graphql */ "query Alerts { alerts(first: 100) { edges { node { id agentId severity status title message occurrenceCount triggeredAt acknowledgeNotes resolution } } } alertRules { name metric operator threshold durationMinutes severity } }",
    AlertsLive: /* graphql */ "subscription AlertsLive { alertChanged { id status } }",
    AckAlert: /* graphql */ "mutation AckAlert($id: ID!, $notes: String) { ackAlert(id: $id, notes: $notes) { alert { id status } errors { code message } } }",
    ResolveAlert: /* graphql */ "mutation ResolveAlert($id: ID!, $resolution: String) { resolveAlert(id: $id, resolution: $resolution) { alert { id status } errors { code message } } }",
    Prompts: /* graphql */ "query Prompts { prompts { model version temperature maxTokens author createdAt } }",
    PromptVersions: /* graphql */ "query PromptVersions($model: String!) { promptHistory(model: $model, limit: 50) { total versions { version systemPrompt temperature maxTokens author description createdAt restoredFrom } } }",
    RestorePrompt: /* graphql */ "mutation RestorePrompt($model: String!, $version: Int!) { restorePrompt(model: $model, version: $version) { prompt { version } errors { code message } } }",
    TestPrompt: /* graphql */ "mutation TestPrompt($model: String!, $eventId: Int!, $systemPrompt: String, $temperature: Float) { testPrompt(model: $model, eventId: $eventId, systemPrompt: $systemPrompt, temperature: $temperature) { current { riskScore riskLevel summary } modified { riskScore riskLevel summary } riskScoreDiff latencyDiffMs pendingTaskIds errors { code message } } }",
  };

  // --- small helpers --------------------------------------------------------------------------
  function el(tag, attrs) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v == null || v === false) return;
      if (k === "text") node.textContent = v;
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    });
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c == null || c === false) continue;
      (Array.isArray(c) ? c : [c]).forEach(function (x) {
        if (x != null && x !== false) node.append(x instanceof Node ? x : document.createTextNode(String(x)));
      });
    }
    return node;
  }
  // a reload asked for while one runs (or within `ms` of the last) happens once, afterwards:
  // a burst of events costs one reload, never one per event
  function coalesced(fn, ms) {
    var busy = false, again = false;
    async function run() {
      if (busy) { again = true; return; }
      busy = true;
      try { await fn(); } finally {
        setTimeout(function () { busy = false; if (again) { again = false; run(); } }, ms);
      }
    }
    return run;
  }
  function status(word) { return el("span", { class: "status s-" + word, text: word }); }
  function when(iso) { return iso ? new Date(iso).toLocaleString() : "—"; }
  function ago(iso) {
    if (!iso) return "—";
    var s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
    return s < 90 ? Math.round(s) + " s" : s < 5400 ? Math.round(s / 60) + " min" : Math.round(s / 3600) + " h";
  }
  function money(x) { return "$" + (x || 0).toFixed(4); }
  function short(id) { return String(id).slice(0, 8); }
  function nodes(conn) { return conn.edges.map(function (e) { return e.node; }); }

  // --- credential -----------------------------------------------------------------------------
  var credential = null;
  var me = { canOperate: false, canAdmin: false, canReadPlatform: false };

  // The dev banner's link carries a one-time code in the fragment (never a token: a URL lands
  // in the browser's history). It leaves the address bar at once and is exchanged for the
  // token, which is kept for this tab only. A used or expired code brings the sign-in form.
  async function readCredential() {
    var m = /(?:^#|&)code=([^&]+)/.exec(location.hash);
    if (m) {
      history.replaceState(null, "", location.pathname + "#/overview");
      var r = null;
      try {
        r = await fetch("/console/session", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ code: decodeURIComponent(m[1]) }),
        });
      } catch (e) { return "Could not reach opsgraph to use the sign-in link: " + e.message; }
      if (!r.ok) return "This sign-in link was used already or has expired: sign in below.";
      sessionStorage.setItem(KEY, (await r.json()).token);
    }
    credential = sessionStorage.getItem(KEY) || localStorage.getItem(KEY);
    return null;
  }
  function authHeaders() {
    if (!credential) return {};
    return credential.split(".").length === 3
      ? { Authorization: "Bearer " + credential }
      : { "X-API-Key": credential };
  }

  async function gql(name, variables) {
    var response = await fetch("/graphql", {
      method: "POST",
      headers: Object.assign({ "Content-Type": "application/json" }, authHeaders()),
      body: JSON.stringify({ query: OPS[name], variables: variables || {}, operationName: name }),
    });
    if (response.status === 401) { signOut("Your credential was refused; sign in again."); throw new Error("unauthenticated"); }
    var body = await response.json();
    if (body.errors && body.errors.length) throw new Error(body.errors[0].message);
    return body.data;
  }

  // a mutation's expected failures come back as `errors` in its payload
  async function act(name, variables) {
    var data = await gql(name, variables);
    var payload = data[Object.keys(data)[0]];
    if (payload && payload.errors && payload.errors.length) {
      alert(payload.errors[0].message);
      return null;
    }
    return payload;
  }

  // --- graphql-transport-ws -------------------------------------------------------------------
  var socket = null, ready = false, nextId = 1, subs = {}, retry = 500;
  function liveDot(on) { document.getElementById("live").classList.toggle("on", on); }
  function connect() {
    if (socket) return;
    socket = new WebSocket(location.origin.replace(/^http/, "ws") + "/graphql", "graphql-transport-ws");
    socket.onopen = function () { socket.send(JSON.stringify({ type: "connection_init", payload: authHeaders() })); };
    socket.onmessage = function (e) {
      var m = JSON.parse(e.data);
      if (m.type === "connection_ack") {
        ready = true; retry = 500; liveDot(true);
        Object.keys(subs).forEach(start);
      } else if (m.type === "ping") {
        socket.send(JSON.stringify({ type: "pong" }));
      } else if (m.type === "next" && subs[m.id]) {
        if (m.payload.data) subs[m.id].onData(m.payload.data);
      } else if (m.type === "error" && subs[m.id]) {
        console.warn("subscription refused", m.payload);
      }
    };
    socket.onclose = function (e) {
      socket = null; ready = false; liveDot(false);
      if (e.code === 4401 || e.code === 4403) return;
      setTimeout(connect, retry); retry = Math.min(retry * 2, 10000);
    };
  }
  function start(id) {
    var s = subs[id];
    socket.send(JSON.stringify({ id: id, type: "subscribe", payload: { query: OPS[s.name], variables: s.variables || {} } }));
  }
  function subscribe(name, variables, onData) {
    var id = String(nextId++);
    subs[id] = { name: name, variables: variables, onData: onData };
    if (ready) start(id); else connect();
    return function () {
      if (subs[id] && ready) socket.send(JSON.stringify({ id: id, type: "complete" }));
      delete subs[id];
    };
  }

  // --- views ----------------------------------------------------------------------------------
  var cleanup = [];
  function onLeave(fn) { cleanup.push(fn); }
  function button(label, onClick, cls) {
    return el("button", { class: cls || "", onclick: onClick, "data-action": label }, label);
  }
  function canAct() { return me.canOperate; }

  // --- a task type's submit form, built from its input's JSON Schema --------------------------
  // Each property gets a control by its type (text, number, checkbox, a choice for an enum);
  // anything else (objects, lists, unions) is a JSON field. The API validates again and names
  // the field it refuses, which the form shows next to it.
  function schemaFields(schema) {
    var defs = schema.$defs || {};
    function resolved(p) {
      if (p && p.$ref && p.$ref.indexOf("#/$defs/") === 0) return defs[p.$ref.slice(8)] || {};
      if (p && p.anyOf) {
        var others = p.anyOf.filter(function (x) { return x.type !== "null"; });
        if (others.length === 1) return Object.assign({}, resolved(others[0]), { nullable: true, default: p.default });
      }
      return p || {};
    }
    var required = schema.required || [];
    return Object.keys(schema.properties || {}).map(function (name) {
      var p = resolved(schema.properties[name]);
      var kind = p.enum ? "enum" : ["string", "integer", "number", "boolean"].indexOf(p.type) >= 0 ? p.type : "json";
      var control;
      if (kind === "enum") control = el("select", { name: name }, p.enum.map(function (v) { return el("option", { value: JSON.stringify(v), text: String(v) }); }));
      else if (kind === "boolean") control = el("input", { type: "checkbox", name: name, checked: p.default === true });
      else if (kind === "json") control = el("textarea", { name: name, rows: "2", placeholder: "JSON" });
      else control = el("input", {
        name: name, type: kind === "string" ? "text" : "number", step: kind === "integer" ? "1" : "any",
        min: p.minimum, max: p.maximum, maxlength: p.maxLength,
      });
      if (p.default != null && kind !== "boolean") control.value = kind === "json" || kind === "enum" ? JSON.stringify(p.default) : String(p.default);
      return { name: name, kind: kind, required: required.indexOf(name) >= 0, control: control, title: p.description || p.title || "" };
    });
  }
  function submitForm(types, submitted) {
    var typeSel = el("select", { name: "new-type" }, types.map(function (t) { return el("option", { value: t.name, text: t.name }); }));
    var fields = el("div", { class: "fields" });
    var said = el("p", { class: "muted", role: "status" });
    var current = [];
    function build() {
      var t = types.filter(function (x) { return x.name === typeSel.value; })[0];
      current = schemaFields(t.inputSchema);
      fields.replaceChildren.apply(fields, current.map(function (f) {
        return el("label", { title: f.title, "data-field": f.name }, f.name + (f.required ? " *" : ""), f.control, el("span", { class: "error field-error" }));
      }));
      said.textContent = (t.description || "") + " · queue " + t.queue + (t.serving ? "" : " · no worker serving it now");
    }
    function value(f) {
      var c = f.control;
      if (f.kind === "boolean") return c.checked;
      if (c.value === "") return undefined;
      if (f.kind === "integer" || f.kind === "number") return Number(c.value);
      if (f.kind === "enum" || f.kind === "json") return JSON.parse(c.value);
      return c.value;
    }
    typeSel.addEventListener("change", build);
    // novalidate: the API is the one judge of an input (and names the field it refuses)
    var form = el("form", { class: "filters", id: "new-task-form", novalidate: true, onsubmit: async function (e) {
      e.preventDefault();
      fields.querySelectorAll(".field-error").forEach(function (n) { n.textContent = ""; });
      var input = {};
      for (var i = 0; i < current.length; i++) {
        var f = current[i];
        try { var v = value(f); } catch (err) { fieldError(f.name, "not valid JSON"); return; }
        if (v !== undefined) input[f.name] = v;
      }
      var payload = (await gql("SubmitTask", { input: { taskType: typeSel.value, input: input } })).submitTask;
      if (payload.errors.length) {
        payload.errors.forEach(function (x) {
          var name = (x.field || "").replace(/^input\./, "").split(".")[0];
          if (!fieldError(name, x.message)) said.textContent = x.message;
        });
        return;
      }
      said.textContent = "submitted " + payload.task.id;
      submitted(payload.task.id);
    } }, el("label", {}, "Task type", typeSel), fields, el("button", { type: "submit", class: "primary", text: "Submit" }));
    function fieldError(name, message) {
      var slot = fields.querySelector('label[data-field="' + CSS.escape(name) + '"] .field-error');
      if (slot) slot.textContent = message;
      return !!slot;
    }
    build();
    return el("details", {}, el("summary", { text: "Submit a task" }), form, said);
  }

  var VIEWS = {
    overview: async function () {
      var queues = el("tbody"), workers = el("tbody");
      var llm = el("div", { class: "cards" });
      var chartBox = el("div", { id: "rate-chart" });
      // a user's task type no live worker serves: its tasks wait (issue 31)
      var unserved = el("p", { class: "error", id: "types-unserved", hidden: true });
      gql("TaskTypes").then(function (d) {
        var idle = d.taskTypes.filter(function (t) { return !t.builtin && !t.serving; }).map(function (t) { return t.name; });
        unserved.hidden = !idle.length;
        unserved.textContent = "No worker serving task type" + (idle.length > 1 ? "s " : " ") + idle.join(", ") + ": their tasks wait.";
      });
      view.append(
        el("h2", { text: "Overview" }),
        llm,
        unserved,
        el("h3", { text: "Queues" }),
        el("table", { id: "queues" }, el("thead", {}, el("tr", {},
          el("th", { text: "queue" }), el("th", { text: "depth" }), el("th", { text: "oldest waiting" }),
          el("th", { text: "running" }), el("th", { text: "workers" }), el("th", { text: "done last hour" }),
          el("th", { text: "drain estimate" }))), queues),
        el("h3", { text: "Added vs done per snapshot" }), chartBox,
        el("h3", { text: "Workers" }),
        el("table", { id: "workers" }, el("thead", {}, el("tr", {},
          el("th", { text: "worker" }), el("th", { text: "queues" }), el("th", { text: "active" }),
          el("th", { text: "utilisation" }), el("th", { text: "last heartbeat" }))), workers)
      );
      var drain = {};
      async function figures() {
        var d = await gql("Overview");
        var s = d.llmStats;
        drain = {};
        s.queues.forEach(function (q) { drain[q.queue] = q.estimatedHuman; });
        llm.replaceChildren(
          card("LLM slots in use", s.semaphoreStats.activeCount + " / " + s.semaphoreStats.maxConcurrent),
          card("Tokens", String(s.totalTokens), "cost " + money(s.totalCostUsd)),
          card("LLM tasks queued", String(s.totalQueued)),
          card("Open alerts", String(d.alertSummary.critical + d.alertSummary.warning + d.alertSummary.info),
            d.alertSummary.critical + " critical · " + d.alertSummary.warning + " warning")
        );
      }
      function card(title, figure, note) {
        return el("div", { class: "card" }, el("div", { class: "muted", text: title }),
          el("div", { class: "figure", text: figure }), note ? el("div", { class: "muted", text: note }) : null);
      }
      await figures();
      // the sparkline: queued total and done-in-the-last-hour, one point per snapshot
      var xs = [], pending = [], done = [], plot = null;
      var oldest = {};
      var last = null;
      function point(q) {
        xs.push(Date.now() / 1000);
        pending.push(q.totalPending);
        done.push(q.queues.reduce(function (a, x) { return a + x.tasksCompletedLastHour; }, 0));
        if (xs.length > 120) { xs.shift(); pending.shift(); done.shift(); }
        if (window.uPlot && xs.length > 1) {
          var series = [xs, pending, done];
          if (!plot) {
            plot = new uPlot({ width: Math.min(800, view.clientWidth - 20), height: 140,
              series: [{}, { label: "queued", stroke: "#3b4ccb" }, { label: "done last hour", stroke: "#1a7f37" }] },
              series, chartBox);
          } else plot.setData(series);
        }
      }
      onLeave(subscribe("QueueStatsLive", {}, async function (data) {
        var q = data.queueStats;
        last = q;
        for (var i = 0; i < q.queues.length; i++) {
          var name = q.queues[i].name;
          if (!q.queues[i].depth) { oldest[name] = null; continue; }
          var t = await gql("OldestQueued", { queue: [name] });
          var first = t.tasks.edges[0];
          oldest[name] = first ? first.node.createdAt : null;
        }
        point(q);
        queues.replaceChildren.apply(queues, q.queues.map(function (x) {
          return el("tr", { "data-queue": x.name }, el("td", { text: x.name }), el("td", { text: String(x.depth) }),
            el("td", { class: "oldest", text: oldest[x.name] ? ago(oldest[x.name]) : "—" }),
            el("td", { text: String(x.activeTasks) }), el("td", { text: String(x.activeWorkers) }),
            el("td", { text: String(x.tasksCompletedLastHour) }), el("td", { text: drain[x.name] || "—" }));
        }));
      }));
      if (me.canReadPlatform) {
        onLeave(subscribe("WorkersLive", {}, function (data) {
          workers.replaceChildren.apply(workers, data.workersChanged.workers.map(function (w) {
            return el("tr", {}, el("td", { text: w.name }), el("td", { text: w.queues.join(", ") }),
              el("td", { text: w.activeTasks + " / " + w.concurrency }), el("td", { text: w.utilizationPct + " %" }),
              el("td", { text: ago(w.lastSeen) }));
          }));
        }));
      }
      // the chart moves on a clock too: a quiet queue is a flat line, not a frozen one
      var timer = setInterval(function () { figures(); if (last) point(last); }, 5000);
      onLeave(function () { clearInterval(timer); });
    },

    tasks: async function () {
      var filter = {};
      var rows = el("tbody", { id: "task-rows" });
      var detail = el("div", { class: "panel", id: "task-detail" }, el("p", { class: "muted", text: "Select a task." }));
      var total = el("span", { class: "muted" });
      var more = el("button", { type: "button", text: "Next page" });
      var cursor = null, live = null, detailLive = null;
      var statusSel = el("select", { name: "status" }, el("option", { value: "", text: "any status" }),
        ["QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"].map(function (s) { return el("option", { value: s, text: s }); }));
      var queueIn = el("input", { name: "queue", placeholder: "queue" });
      var typeIn = el("select", { name: "type" }, el("option", { value: "", text: "any type" }));
      var newTask = el("div", { id: "new-task" });
      gql("TaskTypes").then(function (d) {
        d.taskTypes.forEach(function (t) {
          typeIn.append(el("option", { value: t.name, text: t.name + (t.serving || t.builtin ? "" : " (no worker serving)") }));
        });
        var own = d.taskTypes.filter(function (t) { return !t.builtin && t.inputSchema; });
        if (canAct() && own.length) newTask.replaceChildren(submitForm(own, function (id) { load(null).then(function () { open(id); }); }));
      });
      var originIn = el("input", { name: "origin", placeholder: "origin instance" });
      function apply() {
        filter = {};
        if (statusSel.value) filter.status = [statusSel.value];
        if (queueIn.value) filter.queue = [queueIn.value];
        if (typeIn.value) filter.taskType = [typeIn.value];
        if (originIn.value) filter.originInstance = originIn.value;
        load(null);
      }
      view.append(
        el("h2", { text: "Tasks" }),
        el("form", { class: "filters", onsubmit: function (e) { e.preventDefault(); apply(); } },
          el("label", {}, "Status", statusSel), el("label", {}, "Queue", queueIn),
          el("label", {}, "Type", typeIn), el("label", {}, "Origin", originIn),
          el("button", { type: "submit", text: "Filter" }), total),
        newTask,
        el("div", { class: "split" },
          el("div", {}, el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "task" }), el("th", { text: "status" }),
            el("th", { text: "type" }), el("th", { class: "hide-narrow", text: "queue" }),
            el("th", { class: "hide-narrow", text: "created" }), el("th", { class: "hide-narrow", text: "cost" }))), rows), more),
          detail)
      );
      function matches(t) {
        if (filter.status && filter.status.indexOf(t.status) < 0) return false;
        if (filter.queue && filter.queue.indexOf(t.queue) < 0) return false;
        if (filter.taskType && filter.taskType.indexOf(t.taskType) < 0) return false;
        if (filter.originInstance && t.origin.instance !== filter.originInstance) return false;
        return true;
      }
      // a delayed task waits for its time: its status says until when
      function state(t) {
        if (!t.dueAt) return status(t.status);
        return el("span", {}, status(t.status),
          el("span", { class: "st-due muted", title: "waiting for its time", text: "due " + when(t.dueAt) }));
      }
      function row(t) {
        return el("tr", { class: "row", "data-task": t.id, onclick: function () { open(t.id); } },
          el("td", {}, el("code", { text: short(t.id) })), el("td", { class: "st" }, state(t)),
          el("td", { text: t.taskType }), el("td", { class: "hide-narrow", text: t.queue }),
          el("td", { class: "hide-narrow", text: when(t.createdAt) }), el("td", { class: "hide-narrow", text: money(t.costUsd) }));
      }
      function upsert(t) {
        var existing = rows.querySelector('tr[data-task="' + t.id + '"]');
        if (existing) {
          existing.querySelector(".st").replaceChildren(state(t));
          existing.classList.remove("flash"); void existing.offsetWidth; existing.classList.add("flash");
          if (!matches(t)) existing.remove();
          return;
        }
        if (cursor !== null && cursor !== "first") return; // only the first page grows live
        if (!matches(t)) return;
        var r = row(t); r.classList.add("flash");
        rows.prepend(r);
        while (rows.children.length > MAX_ROWS) rows.lastChild.remove();
      }
      async function load(after) {
        var d = await gql("Tasks", { first: 50, after: after, filter: filter });
        var list = nodes(d.tasks);
        rows.replaceChildren.apply(rows, list.map(row));
        total.textContent = d.tasks.totalCount + " tasks";
        cursor = after ? d.tasks.pageInfo.endCursor : "first";
        var next = d.tasks.pageInfo.endCursor;
        more.hidden = !d.tasks.pageInfo.hasNextPage;
        more.onclick = function () { load(next); };
        if (live) live();
        live = subscribe("TaskLive", { queue: filter.queue ? filter.queue[0] : null, status: filter.status || null },
          function (data) { upsert(data.taskUpdated); });
      }
      async function open(id) {
        if (detailLive) detailLive();
        var t = (await gql("TaskDetail", { id: id })).task;
        if (!t) return;
        var actions = el("div", { class: "actions" });
        function draw(task) {
          actions.replaceChildren();
          if (!canAct()) return;
          if (task.status === "QUEUED" || task.status === "RUNNING")
            actions.append(button("Cancel", async function () { await act("CancelTask", { id: id }); }, "danger"));
          if (task.status === "FAILED" || task.status === "CANCELLED")
            actions.append(button("Retry", async function () { await act("RetryTask", { id: id }); }, "primary"));
        }
        var head = el("div", {}, el("h3", {}, el("code", { text: t.id })), status(t.status));
        detail.replaceChildren.apply(detail, [
          head, actions,
          el("p", {}, t.taskType + (t.operation ? " · " + t.operation : "") + " · queue " + t.queue),
          el("p", { class: "muted" }, "attempts " + t.attempts + " / " + t.maxAttempts + " · tokens " +
            t.inputTokens + " in, " + t.outputTokens + " out · " + money(t.costUsd) +
            (t.latencyMs != null ? " · " + Math.round(t.latencyMs) + " ms" : "")),
          el("h3", { text: "Transitions" }),
          el("ul", { class: "timeline" }, t.transitions.map(function (x) {
            return el("li", {}, status(x.toStatus), " ", el("span", { class: "muted", text: when(x.at) + (x.reason ? " · " + x.reason : "") }));
          })),
          t.errors.length ? el("div", {}, el("h3", { text: "Errors" }), el("ul", {}, t.errors.map(function (e) { return el("li", { class: "error", text: e }); }))) : null,
          t.dueAt ? el("p", { class: "muted", id: "task-due" }, "waiting for its time: due " + when(t.dueAt)) : null,
          // the limits it runs under: while QUEUED it may be waiting on them
          t.concurrencyKey ? el("p", { class: "muted", id: "task-concurrency", text: "concurrency key " + t.concurrencyKey + ": at most " + t.concurrencyLimit + " at once" }) : null,
          t.rateKey ? el("p", { class: "muted", id: "task-rate", text: "rate key " + t.rateKey + ": at most " + t.rateLimit }) : null,
          t.parent ? el("p", {}, "child of ", el("a", { href: "#", "data-related": t.parent.id, onclick: function (e) { e.preventDefault(); open(t.parent.id); } },
            el("code", { text: short(t.parent.id) })), " · " + t.parent.taskType) : null,
          t.children.length ? el("div", { id: "task-children" }, el("h3", { text: "Children" }), el("ul", {}, t.children.map(function (c) {
            return el("li", {}, el("a", { href: "#", "data-related": c.id, onclick: function (e) { e.preventDefault(); open(c.id); } }, el("code", { text: short(c.id) })),
              " " + c.taskType + " ", status(c.status));
          }))) : null,
          el("h3", { text: "Logs" }),
          el("pre", { class: "mono" }, t.logs.map(function (l) { return l.at.slice(11, 19) + " " + l.level + " " + l.message + "\n"; }).join(""))
        ].filter(Boolean));
        draw(t);
        detailLive = subscribe("TaskDetailLive", { id: id }, function (data) {
          var u = data.taskUpdated;
          head.replaceChildren(el("h3", {}, el("code", { text: u.id })), status(u.status));
          draw(u);
          if (u.status !== t.status) { t.status = u.status; open(id); }
        });
      }
      onLeave(function () { if (live) live(); if (detailLive) detailLive(); });
      await load(null);
    },

    workflows: async function () {
      var list = el("tbody"), canvas = el("div", { class: "dag" }), actions = el("div", { class: "actions" });
      var live = null;
      view.append(el("h2", { text: "Workflows" }), el("div", { class: "split" },
        el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "workflow" }), el("th", { text: "status" }),
          el("th", { text: "steps" }))), list),
        el("div", { class: "panel" }, actions, canvas)));
      var d = await gql("Workflows");
      nodes(d.workflows).forEach(function (w) {
        list.append(el("tr", { class: "row", "data-workflow": w.id, onclick: function () { open(w.id); } },
          el("td", { text: w.name }), el("td", {}, status(w.status)), el("td", { text: w.completedSteps + " / " + w.totalSteps })));
      });
      async function open(id) {
        if (live) live();
        var w = (await gql("Workflow", { id: id })).workflow;
        actions.replaceChildren(el("strong", { text: w.name }), status(w.status));
        if (canAct()) {
          actions.append(button("Pause", function () { act("PauseWorkflow", { id: id }); }),
            button("Resume", function () { act("ResumeWorkflow", { id: id }); }),
            button("Retry", function () { act("RetryWorkflow", { id: id }); }));
          // a step waiting for an operator's decision (issue 32): approve or reject it here
          w.steps.filter(function (s) { return s.kind === "APPROVAL" && s.status === "RUNNING"; }).forEach(function (s) {
            actions.append(el("span", { class: "muted", text: "step " + s.stepId + " waits for approval:" }),
              button("Approve", function () { act("ApproveStep", { workflowId: id, stepId: s.stepId, note: prompt("Note (optional)") || null }).then(function () { open(id); }); }, "primary"),
              button("Reject", function () { act("RejectStep", { workflowId: id, stepId: s.stepId, note: prompt("Why?") || null }).then(function () { open(id); }); }, "danger"));
          });
        }
        draw(w.steps);
        live = subscribe("WorkflowLive", { id: id }, function (data) {
          var u = data.workflowUpdated;
          actions.querySelector(".status").replaceWith(status(u.status));
          u.steps.forEach(function (s) {
            var box = canvas.querySelector('[data-step="' + s.stepId + '"]');
            if (box) box.setAttribute("class", "step s-" + s.status);
          });
        });
      }
      function draw(steps) {
        // dagre lays the DAG out; the console only draws the boxes and edges it computed
        var g = new dagre.graphlib.Graph();
        g.setGraph({ rankdir: "LR", nodesep: 20, ranksep: 40 });
        g.setDefaultEdgeLabel(function () { return {}; });
        steps.forEach(function (s) { g.setNode(s.stepId, { width: 130, height: 36 }); });
        steps.forEach(function (s) { s.dependencies.forEach(function (d) { g.setEdge(d, s.stepId); }); });
        dagre.layout(g);
        var ns = "http://www.w3.org/2000/svg";
        var svg = document.createElementNS(ns, "svg");
        svg.setAttribute("viewBox", "0 0 " + (g.graph().width + 20) + " " + (g.graph().height + 20));
        g.edges().forEach(function (e) {
          var p = g.edge(e).points.map(function (q) { return (q.x + 10) + "," + (q.y + 10); }).join(" ");
          var line = document.createElementNS(ns, "polyline");
          line.setAttribute("points", p); line.setAttribute("fill", "none"); line.setAttribute("stroke", "#98a2b3");
          svg.append(line);
        });
        steps.forEach(function (s) {
          var n = g.node(s.stepId);
          var grp = document.createElementNS(ns, "g");
          grp.setAttribute("data-step", s.stepId); grp.setAttribute("class", "step s-" + s.status);
          var r = document.createElementNS(ns, "rect");
          r.setAttribute("x", n.x - n.width / 2 + 10); r.setAttribute("y", n.y - n.height / 2 + 10);
          r.setAttribute("width", n.width); r.setAttribute("height", n.height); r.setAttribute("rx", 6);
          r.setAttribute("fill", "#fff"); r.setAttribute("stroke", "currentColor");
          var t = document.createElementNS(ns, "text");
          t.setAttribute("x", n.x + 10); t.setAttribute("y", n.y + 14); t.setAttribute("text-anchor", "middle");
          t.setAttribute("fill", "currentColor"); t.setAttribute("font-size", "12");
          t.textContent = s.stepId;
          grp.append(r, t); svg.append(grp);
        });
        canvas.replaceChildren(svg);
      }
      onLeave(function () { if (live) live(); });
    },

    schedules: async function () {
      var rows = el("tbody", { id: "schedules" });
      var form = el("div", { id: "new-schedule" });
      view.append(el("h2", { text: "Schedules" }), form,
        el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "schedule" }), el("th", { text: "cron" }),
          el("th", { text: "runs" }), el("th", { text: "next" }), el("th", { text: "last run" }), el("th", { text: "" }))), rows));
      async function load() {
        var d = await gql("Schedules");
        rows.replaceChildren.apply(rows, d.schedules.map(function (s) {
          var controls = el("td", {});
          if (canAct()) {
            controls.append(s.paused
              ? button("Resume", function () { act("ResumeSchedule", { id: s.id }).then(load); })
              : button("Pause", function () { act("PauseSchedule", { id: s.id }).then(load); }),
              button("Run now", function () { act("TriggerSchedule", { id: s.id }).then(load); }, "primary"));
          }
          var last = s.runs[0];
          return el("tr", { "data-schedule": s.id }, el("td", { text: s.name }),
            el("td", {}, el("code", { text: s.cron }), " " + s.timezone),
            el("td", { text: s.taskType || "a workflow" }),
            el("td", { text: s.paused ? "paused" : when(s.nextFireAt) }),
            el("td", { class: "last-run", text: last ? last.outcome + " · " + when(last.fireTime) : "—" }), controls);
        }));
      }
      if (canAct()) {
        var fields = {
          name: el("input", { name: "schedule-name", placeholder: "name" }),
          cron: el("input", { name: "schedule-cron", placeholder: "0 * * * *" }),
          timezone: el("input", { name: "schedule-timezone", value: "UTC" }),
          taskType: el("select", { name: "schedule-type" }),
          input: el("textarea", { name: "schedule-input", rows: "1", placeholder: "{} (JSON)" }),
        };
        var said = el("span", { class: "error", role: "status" });
        gql("TaskTypes").then(function (d) {
          d.taskTypes.filter(function (t) { return t.name === "echo" || t.name === "llm" || !t.builtin; }).forEach(function (t) {
            fields.taskType.append(el("option", { value: t.name, text: t.name }));
          });
        });
        form.append(el("details", {}, el("summary", { text: "New schedule" }),
          el("form", { class: "filters", novalidate: true, onsubmit: async function (e) {
            e.preventDefault();
            var input;
            try { input = fields.input.value ? JSON.parse(fields.input.value) : {}; } catch (err) { said.textContent = "input: not valid JSON"; return; }
            var payload = (await gql("CreateSchedule", { input: { name: fields.name.value, cron: fields.cron.value,
              timezone: fields.timezone.value, taskType: fields.taskType.value, input: input } })).createSchedule;
            said.textContent = payload.errors.length ? (payload.errors[0].field + ": " + payload.errors[0].message) : "";
            if (!payload.errors.length) load();
          } },
            el("label", {}, "Name", fields.name), el("label", {}, "Cron", fields.cron),
            el("label", {}, "Time zone", fields.timezone), el("label", {}, "Task type", fields.taskType),
            el("label", {}, "Input", fields.input), el("button", { type: "submit", class: "primary", text: "Create" }), said)));
      }
      var reload = coalesced(load, 1000);
      await load();
      onLeave(subscribe("ScheduleChanged", {}, reload));
    },

    pipeline: async function () {
      var cams = el("tbody", { id: "cameras" });
      var batches = el("tbody", { id: "batches" }), events = el("tbody", { id: "events" });
      view.append(el("h2", { text: "Pipeline" }),
        el("h3", { text: "Cameras" }),
        el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "camera" }), el("th", { text: "images" }),
          el("th", { text: "last image" }), el("th", { text: "batches open" }))), cams),
        el("h3", { text: "Batches aggregating" }),
        el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "batch" }), el("th", { text: "camera" }),
          el("th", { text: "detections" }), el("th", { text: "last activity" }), el("th", { text: "closes in" }),
          el("th", { text: "" }))), batches),
        el("h3", { text: "Security events" }),
        el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "event" }), el("th", { text: "camera" }),
          el("th", { text: "risk" }), el("th", { text: "summary" }), el("th", { text: "frames" }))), events));
      async function load() {
        var d = await gql("Pipeline");
        cams.replaceChildren.apply(cams, d.cameras.map(function (c) {
          return el("tr", {}, el("td", { text: c.cameraId }), el("td", { text: String(c.images) }),
            el("td", { text: ago(c.lastImageAt) + " ago" }), el("td", { text: String(c.aggregatingBatches) }));
        }));
        batches.replaceChildren.apply(batches, d.activeBatches.map(function (b) {
          return el("tr", { "data-batch": b.batchId }, el("td", {}, el("code", { text: b.batchId })), el("td", { text: b.cameraId }),
            el("td", { text: String(b.detectionCount) }), el("td", { text: ago(b.lastActivityAt) + " ago" }),
            el("td", { class: "due", "data-due": b.dueAt, text: left(b.dueAt) }),
            el("td", {}, canAct() ? button("Flush", async function () { if (await act("FlushBatch", { batchId: b.batchId })) load(); }) : null));
        }));
        events.replaceChildren.apply(events, nodes(d.securityEvents).map(function (e) {
          return el("tr", {}, el("td", { text: String(e.id) }), el("td", { text: e.cameraId }),
            el("td", {}, status(e.riskLevel), " " + e.riskScore), el("td", { text: e.summary }),
            el("td", { class: "frames" }, e.detections.map(function (x) {
              return x.thumbnail
                ? el("img", { class: "thumb", src: x.thumbnail, alt: x.detectionType || "frame", title: x.detectionType || "" })
                : el("span", { class: "muted", text: x.detectionType || "?" });
            })));
        }));
      }
      function left(iso) {
        var s = Math.max(0, (new Date(iso).getTime() - Date.now()) / 1000);
        return s < 90 ? Math.round(s) + " s" : Math.round(s / 60) + " min";
      }
      var reload = coalesced(load, 1000);
      await load();
      // the time left counts down between snapshots
      var tick = setInterval(function () {
        batches.querySelectorAll("td.due").forEach(function (td) { td.textContent = left(td.getAttribute("data-due")); });
      }, 1000);
      onLeave(function () { clearInterval(tick); });
      onLeave(subscribe("BatchLive", {}, reload));
      onLeave(subscribe("EventsLive", {}, reload));
    },

    dlq: async function () {
      var box = el("div", { id: "dlq" });
      view.append(el("h2", { text: "DLQ" }), box);
      async function load() {
        var d = await gql("Dlq");
        box.replaceChildren();
        for (var i = 0; i < d.dlqStats.queues.length; i++) {
          var q = d.dlqStats.queues[i];
          var entries = q.count ? (await gql("DlqJobs", { queue: q.queueName })).dlqJobs : [];
          var actions = el("div", { class: "actions" });
          if (canAct() && q.count) {
            actions.append(
              button("Requeue one", (function (name) { return async function () { await act("RequeueOne", { queue: name }); load(); }; })(q.queueName)),
              button("Requeue all", (function (name) { return async function () { await act("RequeueAll", { queue: name }); load(); }; })(q.queueName)),
              button("Clear", (function (name, n) { return async function () {
                if (confirm("Delete all " + n + " entries of " + name + "?")) { await act("ClearDlq", { queue: name }); load(); }
              }; })(q.queueName, q.count), "danger"));
          }
          box.append(el("section", { class: "panel", "data-dlq": q.queueName },
            el("h3", { text: q.queueName + " · " + q.count }), actions,
            el("table", {}, el("tbody", {}, entries.map(function (j) {
              return el("tr", {}, el("td", {}, el("code", { text: short(j.taskId) })), el("td", { class: "error", text: j.error }),
                el("td", { text: j.attemptCount + " attempts" }), el("td", { text: when(j.lastFailedAt) }));
            })))));
        }
      }
      var reload = coalesced(load, 1000);
      await load();
      onLeave(subscribe("DlqLive", {}, reload));
    },

    jobs: async function () {
      var rows = el("tbody", { id: "jobs" });
      view.append(el("h2", { text: "Jobs" }), el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "job" }),
        el("th", { text: "type" }), el("th", { text: "status" }), el("th", { text: "progress" }), el("th", { text: "" }))), rows));
      var d = await gql("Jobs");
      nodes(d.jobs).forEach(function (j) {
        var bar = el("span", { style: "width:" + Math.round(j.progress) + "%" });
        var st = el("td", {}, status(j.status));
        var actions = el("td", {});
        function draw(job) {
          actions.replaceChildren();
          if (job.status === "COMPLETED" && j.jobType === "export")
            actions.append(button("Download", function () { download(j.id); }));
          if (canAct() && (job.status === "PENDING" || job.status === "RUNNING"))
            actions.append(button("Cancel", function () { act("CancelJob", { id: j.id }); }),
              button("Abort", function () { act("AbortJob", { id: j.id }); }, "danger"));
        }
        draw(j);
        rows.append(el("tr", { "data-job": j.id }, el("td", {}, el("code", { text: short(j.id) })), el("td", { text: j.jobType }),
          st, el("td", {}, el("div", { class: "bar" }, bar)), actions));
        if (j.status === "PENDING" || j.status === "RUNNING") {
          onLeave(subscribe("JobLive", { id: j.id }, function (data) {
            var u = data.jobProgress;
            bar.style.width = Math.round(u.progress) + "%";
            st.replaceChildren(status(u.status));
            draw(u);
          }));
        }
      });
      async function download(id) {
        // the download needs the credential, which a plain link cannot carry
        var r = await fetch("/api/jobs/" + id + "/download", { headers: authHeaders() });
        if (!r.ok) { alert("download refused: " + r.status); return; }
        var url = URL.createObjectURL(await r.blob());
        var a = el("a", { href: url, download: "export-" + short(id) });
        document.body.append(a); a.click(); a.remove(); URL.revokeObjectURL(url);
      }
    },

    agents: async function () {
      var rows = el("tbody", { id: "agents" });
      view.append(el("h2", { text: "Agents" }), el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "agent" }),
        el("th", { text: "type" }), el("th", { text: "status" }), el("th", { text: "desired" }), el("th", { text: "replicas" }),
        el("th", { text: "heartbeat" }), el("th", { text: "" }))), rows));
      async function load() {
        var d = await gql("Agents");
        rows.replaceChildren.apply(rows, nodes(d.agents).map(function (a) {
          var controls = el("td", {});
          if (canAct()) {
            controls.append(button("Pause", function () { act("PauseAgent", { id: a.id }).then(load); }),
              button("Resume", function () { act("ResumeAgent", { id: a.id }).then(load); }),
              button("Restart", function () { act("RestartAgent", { id: a.id }).then(load); }),
              button("Scale", function () {
                var n = parseInt(prompt("Replicas for " + a.name, String(a.replicas)) || "", 10);
                if (n >= 0) act("ScaleAgent", { id: a.id, replicas: n }).then(load);
              }));
          }
          return el("tr", { "data-agent": a.id }, el("td", { text: a.name }), el("td", { text: a.type }), el("td", {}, status(a.status)),
            el("td", { text: a.desiredState }), el("td", { text: String(a.replicas) }), el("td", { text: ago(a.lastHeartbeat) }), controls);
        }));
      }
      var reload = coalesced(load, 1000);
      await load();
      onLeave(subscribe("AgentsLive", {}, reload));
    },

    alerts: async function () {
      var rows = el("tbody", { id: "alerts" }), rules = el("tbody");
      view.append(el("h2", { text: "Alerts" }), el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "alert" }),
        el("th", { text: "severity" }), el("th", { text: "status" }), el("th", { text: "agent" }), el("th", { text: "seen" }),
        el("th", { text: "" }))), rows),
        el("h3", { text: "Rules" }), el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "rule" }),
          el("th", { text: "condition" }), el("th", { text: "severity" }))), rules));
      async function load() {
        var d = await gql("Alerts");
        rows.replaceChildren.apply(rows, nodes(d.alerts).map(function (a) {
          var controls = el("td", {});
          if (canAct() && a.status === "ACTIVE")
            controls.append(button("Acknowledge", async function () {
              var notes = prompt("Notes for the acknowledgement", "") || null;
              if (await act("AckAlert", { id: a.id, notes: notes })) load();
            }));
          if (canAct() && a.status !== "RESOLVED")
            controls.append(button("Resolve", async function () {
              var resolution = prompt("Resolution", "") || null;
              if (await act("ResolveAlert", { id: a.id, resolution: resolution })) load();
            }, "primary"));
          return el("tr", { "data-alert": a.id }, el("td", {}, el("strong", { text: a.title }), el("div", { class: "muted", text: a.message })),
            el("td", {}, status(a.severity)), el("td", {}, status(a.status)), el("td", { text: a.agentId }),
            el("td", { text: a.occurrenceCount + "× · " + ago(a.triggeredAt) + " ago" }), controls);
        }));
        rules.replaceChildren.apply(rules, d.alertRules.map(function (r) {
          return el("tr", {}, el("td", { text: r.name }),
            el("td", { text: r.metric + " " + r.operator + " " + r.threshold +
              (r.durationMinutes ? " for " + r.durationMinutes + " min" : "") }), el("td", {}, status(r.severity)));
        }));
      }
      var reload = coalesced(load, 1000);
      await load();
      onLeave(subscribe("AlertsLive", {}, reload));
    },

    prompts: async function () {
      var list = el("tbody"), panel = el("div", { class: "panel", id: "prompt-panel" });
      view.append(el("h2", { text: "Prompts" }), el("div", { class: "split" },
        el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "model" }), el("th", { text: "version" }),
          el("th", { text: "author" }))), list), panel));
      var d = await gql("Prompts");
      d.prompts.forEach(function (p) {
        list.append(el("tr", { class: "row", "data-model": p.model, onclick: function () { open(p.model); } },
          el("td", { text: p.model }), el("td", { text: "v" + p.version }), el("td", { text: p.author })));
      });
      async function open(model) {
        var h = (await gql("PromptVersions", { model: model })).promptHistory;
        var a = el("select", {}, h.versions.map(function (v) { return el("option", { value: v.version, text: "v" + v.version }); }));
        var b = el("select", {}, h.versions.map(function (v) { return el("option", { value: v.version, text: "v" + v.version }); }));
        if (h.versions.length > 1) a.value = String(h.versions[1].version);
        var out = el("div", { class: "diff" });
        function byVersion(n) { return h.versions.filter(function (v) { return v.version === Number(n); })[0]; }
        function show() { out.replaceChildren.apply(out, diff(byVersion(a.value), byVersion(b.value))); }
        a.onchange = b.onchange = show;
        var tools = el("div", { class: "actions" });
        if (canAct()) {
          tools.append(button("Restore older", async function () {
            if (await act("RestorePrompt", { model: model, version: Number(a.value) })) open(model);
          }));
          var eventIn = el("input", { placeholder: "event id", size: 8 });
          var tempIn = el("input", { placeholder: "temperature", size: 6 });
          var result = el("div", { class: "muted" });
          tools.append(el("span", {}, " A/B test on ", eventIn, tempIn, button("Run test", async function () {
            result.textContent = "running…";
            var r = await act("TestPrompt", { model: model, eventId: Number(eventIn.value),
              systemPrompt: byVersion(b.value).systemPrompt, temperature: tempIn.value ? Number(tempIn.value) : null });
            result.textContent = r ? (r.current && r.modified
              ? "current " + r.current.riskScore + " (" + r.current.riskLevel + ") vs candidate " + r.modified.riskScore +
                " (" + r.modified.riskLevel + "), diff " + r.riskScoreDiff
              : "still running: " + r.pendingTaskIds.join(", ")) : "";
          })), result);
        }
        panel.replaceChildren(el("h3", { text: model + " · " + h.total + " versions" }),
          el("div", { class: "filters" }, el("label", {}, "older", a), el("label", {}, "newer", b)), tools, out);
        show();
      }
      function diff(x, y) {
        // a line diff (longest common subsequence) of the two system prompts, then the knobs
        var p = x.systemPrompt.split("\n"), q = y.systemPrompt.split("\n");
        var m = p.length, n = q.length, L = [];
        for (var i = 0; i <= m; i++) { L.push(new Array(n + 1).fill(0)); }
        for (i = m - 1; i >= 0; i--) for (var j = n - 1; j >= 0; j--)
          L[i][j] = p[i] === q[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
        var out = []; i = 0; j = 0;
        while (i < m || j < n) {
          if (i < m && j < n && p[i] === q[j]) { out.push(el("div", { text: "  " + p[i] })); i++; j++; }
          else if (j < n && (i >= m || L[i][j + 1] >= L[i + 1][j])) { out.push(el("div", { class: "add", text: "+ " + q[j] })); j++; }
          else { out.push(el("div", { class: "del", text: "- " + p[i] })); i++; }
        }
        out.push(el("div", { class: "muted", text: "temperature " + x.temperature + " → " + y.temperature +
          " · max tokens " + x.maxTokens + " → " + y.maxTokens }));
        return out;
      }
    },
  };

  // --- routing --------------------------------------------------------------------------------
  var PLATFORM_VIEWS = ["pipeline", "dlq"];
  async function route() {
    cleanup.forEach(function (fn) { try { fn(); } catch (e) { console.warn(e); } });
    cleanup = [];
    var name = (location.hash.replace(/^#\/?/, "") || "overview").split("?")[0];
    if (!VIEWS[name]) name = "overview";
    document.querySelectorAll("#nav a").forEach(function (a) {
      a.classList.toggle("active", a.getAttribute("href") === "#/" + name);
    });
    view.replaceChildren();
    view.setAttribute("data-view", name);
    if (PLATFORM_VIEWS.indexOf(name) >= 0 && !me.canReadPlatform) {
      // the API answers these installation-wide views 403 to a tenant-scoped credential
      view.append(el("h2", { text: name === "dlq" ? "DLQ" : "Pipeline" }),
        el("p", { class: "muted", text: "Installation-wide: not available to a tenant-scoped credential." }));
      view.setAttribute("data-ready", name);
      return;
    }
    try {
      await VIEWS[name]();
      view.setAttribute("data-ready", name);
    } catch (e) {
      view.append(el("p", { class: "error", text: "Could not load " + name + ": " + e.message }));
    }
  }

  function signOut(message) {
    sessionStorage.removeItem(KEY); localStorage.removeItem(KEY);
    credential = null;
    if (socket) socket.close();
    showSignIn(message);
  }
  function showSignIn(message) {
    document.getElementById("signin").hidden = false;
    view.hidden = true;
    document.getElementById("signin-error").textContent = message || "";
  }

  async function boot() {
    var refused = await readCredential();
    if (refused || !credential) { showSignIn(refused); return; }
    try {
      me = (await gql("Viewer")).viewer;
    } catch (e) { return; }
    document.getElementById("signin").hidden = true;
    view.hidden = false;
    document.getElementById("signout").hidden = false;
    document.getElementById("who").textContent = me.subject + " · " + me.role + (me.tenantId ? " · tenant " + me.tenantId : "");
    document.body.setAttribute("data-role", me.role);
    connect();
    window.addEventListener("hashchange", route);
    route();
  }

  document.getElementById("signin").addEventListener("submit", function (e) {
    e.preventDefault();
    var value = document.getElementById("credential").value.trim();
    sessionStorage.setItem(KEY, value);
    boot();
  });
  document.getElementById("signout").addEventListener("click", function () { signOut(); });
  boot();
})();
