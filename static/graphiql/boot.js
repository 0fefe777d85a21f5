// idgraph's GraphiQL page: renders GraphiQL against /graphql. It runs after the vendored UMD
// builds (loaded before it, in order, with `defer`), which set window.React, window.ReactDOM
// (React 18: createRoot) and window.GraphiQL. No inline script: the page's CSP allows 'self' only.
(function () {
  'use strict';

  // Turns an answer into what GraphiQL shows: the JSON body, or an error naming the status.
  function read(response) {
    return response.text().then(function (text) {
      try {
        return JSON.parse(text);
      } catch (_) {
        var what = response.status + ' ' + response.statusText + ': ' + text;
        return { errors: [{ message: what }] };
      }
    });
  }

  // Sends one operation as a JSON POST, with the headers typed in GraphiQL's headers pane
  // (e.g. {"Authorization": "Bearer …"}). `apollo-require-preflight` is needed because
  // /graphql refuses requests a browser could send cross-site without a CORS preflight.
  function fetcher(params, options) {
    return Promise.resolve().then(function () {
      var headers = new Headers((options && options.headers) || {});
      headers.set('content-type', 'application/json');
      headers.set('accept', 'application/json');
      headers.set('apollo-require-preflight', 'true');
      return fetch('/graphql', {
        method: 'POST',
        headers: headers,
        body: JSON.stringify(params),
        credentials: 'same-origin',
      }).then(read);
    });
  }

  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(React.createElement(GraphiQL, { fetcher: fetcher }));
})();
