// automator's dashboard: filter the rows as you type, and refresh the page's data in place.
// No framework and no build step; the page works without it (the filter is a GET form).
"use strict";
(function () {
  const body = document.body;
  const period = Number(body.dataset.refresh || 0);
  const live = document.getElementById("live");

  function filter() {
    const table = document.getElementById("policies");
    const q = document.getElementById("q");
    const state = document.getElementById("state");
    if (!table || !q || !state) return;
    const needle = q.value.trim().toLowerCase();
    const want = state.value;
    let shown = 0;
    const rows = table.tBodies[0].rows;
    for (const row of rows) {
      const ok = (!want || row.dataset.state === want) && (!needle || row.textContent.toLowerCase().includes(needle));
      row.hidden = !ok;
      if (ok) shown += 1;
    }
    const count = document.getElementById("shown");
    if (count) count.textContent = shown + " of " + rows.length;
    const params = new URLSearchParams();
    if (needle) params.set("q", q.value.trim());
    if (want) params.set("state", want);
    const query = params.toString();
    history.replaceState(null, "", location.pathname + (query ? "?" + query : ""));
  }

  function wire() {
    const form = document.getElementById("filter");
    if (!form) return;
    form.addEventListener("submit", (event) => { event.preventDefault(); filter(); });
    document.getElementById("q").addEventListener("input", filter);
    document.getElementById("state").addEventListener("change", filter);
    filter();
  }

  // Replace what the server renders afresh, keeping what the user is typing.
  function swap(fresh) {
    const ids = ["generated"];
    const table = document.getElementById("policies");
    if (table) {
      const next = fresh.getElementById("policies");
      if (next) table.tBodies[0].replaceWith(next.tBodies[0]);
      const options = fresh.getElementById("state");
      const select = document.getElementById("state");
      if (options && select) {
        const value = select.value;
        select.innerHTML = options.innerHTML;
        select.value = value;
      }
      filter();
    } else {
      const main = fresh.getElementById("main");
      if (main) document.getElementById("main").replaceWith(main);
    }
    for (const id of ids) {
      const el = document.getElementById(id);
      const next = fresh.getElementById(id);
      if (el && next) el.replaceWith(next);
    }
  }

  async function refresh() {
    try {
      const answer = await fetch(location.pathname, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (answer.status === 401) { live.textContent = "signed out: reload to sign in"; return; }
      if (!answer.ok) { live.textContent = "refresh failed (HTTP " + answer.status + ")"; return; }
      swap(new DOMParser().parseFromString(await answer.text(), "text/html"));
      live.textContent = "";
    } catch (error) {
      live.textContent = "refresh failed: the automator did not answer";
    }
  }

  wire();
  if (period > 0) {
    const timer = setInterval(refresh, period * 1000);
    // leaving the page (signing out, say) stops the refreshes, so none is refused half-way
    window.addEventListener("beforeunload", () => clearInterval(timer));
  }
})();
