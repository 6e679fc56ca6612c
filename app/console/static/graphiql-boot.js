// GraphiQL over opsgraph's own endpoint, queries and subscriptions, signed in with the console's
// credential (the one the console keeps in this browser's storage; never one from the URL,
// which would land in the browser's history).
(function () {
  "use strict";
  var KEY = "opsgraph.credential";
  var token = sessionStorage.getItem(KEY) || localStorage.getItem(KEY);
  var url = window.location.origin + "/graphql";
  // a JWT is a bearer token; anything else the console accepted is an API key
  var auth = !token ? {} : token.split(".").length === 3
    ? { Authorization: "Bearer " + token }
    : { "X-API-Key": token };
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
