// GraphiQL over opsgraph's own endpoint, queries and subscriptions, signed in with the console's
// credential (a `#token=` fragment, or the one the console keeps in this browser's storage).
(function () {
  "use strict";
  var KEY = "opsgraph.credential";
  var match = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
  if (match) {
    sessionStorage.setItem(KEY, decodeURIComponent(match[1]));
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  var token = sessionStorage.getItem(KEY) || localStorage.getItem(KEY);
  var url = window.location.origin + "/graphql";
  var auth = token ? { Authorization: "Bearer " + token } : {};
  var fetcher = GraphiQL.createFetcher({
    url: url,
    headers: auth,
    subscriptionUrl: url.replace(/^http/, "ws"),
    wsConnectionParams: auth,
  });
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
      defaultQuery: "query Queues {\n  queueStats { totalPending totalActive queues { name depth } }\n}\n",
    })
  );
})();
