// Takes the one-time token from the address bar (and removes it from there and from the
// history), then posts it to the API route of this page's flow.
"use strict";
(function () {
  const flow = document.body.dataset.flow;
  const token = new URLSearchParams(location.search).get("token") || "";
  history.replaceState(null, "", location.pathname);
  const routes = {
    verify: "/email/verify-confirm",
    reset: "/password/reset-confirm",
    change: "/email/change-confirm",
    magic: "/magic-link/verify",
  };
  const result = document.getElementById("result");
  const button = document.getElementById("go");
  if (!token) {
    result.textContent = "This link has no token.";
    button.disabled = true;
    return;
  }
  button.addEventListener("click", async function () {
    const body = { token: token };
    if (flow === "reset") {
      body.new_password = document.getElementById("password").value;
    }
    button.disabled = true;
    try {
      const response = await fetch(routes[flow], {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        // A magic link signs this browser in: its cookies (the session's, and in
        // same-browser mode the one the request set) go along; the other flows need none.
        credentials: flow === "magic" ? "same-origin" : "omit",
      });
      const data = await response.json();
      const detail = Array.isArray(data.detail)
        ? data.detail.map(function (d) { return d.msg; }).join(" ")
        : data.detail;
      result.textContent = flow === "magic" && response.ok
        ? "Signed in as " + (data.username || data.id) + "."
        : detail || String(response.status);
      // A refused password can be corrected and sent again; anything else is final.
      button.disabled = response.ok || response.status !== 422;
    } catch (e) {
      result.textContent = "The server could not be reached.";
      button.disabled = false;
    }
  });
})();
