// The judge page: every text from the server enters the page through textContent only.
"use strict";
(function () {
  const api = "/api/judge/" + location.pathname.split("/").slice(2, 4).join("/");
  const $ = (id) => document.getElementById(id);
  let state = null, deadline = 0, ticker = null, busy = false;

  function show(id) {
    for (const s of ["loading", "instructions", "question", "done"]) $(s).hidden = s !== id;
  }

  function error(message) {
    $("error").textContent = message;
    $("error").hidden = false;
  }

  async function call(path, body) {
    const init = body === undefined ? {method: path ? "POST" : "GET"} : {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)};
    const r = await fetch(api + path, init);
    const data = await r.json();
    if (!r.ok) throw new Error(data.error || ("HTTP " + r.status));
    return data;
  }

  function setButtons(enabled) {
    $("correct").disabled = !enabled;
    $("incorrect").disabled = !enabled;
  }

  function tick() {
    const left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    $("countdown").textContent = left + " s";
    $("countdown").classList.toggle("low", left <= 10);
    if (left <= 0) {
      clearInterval(ticker);
      ticker = null;
      setButtons(false);
      $("timeup").hidden = false;
      submit("timeout");
    }
  }

  function render(s) {
    state = s;
    if (ticker) { clearInterval(ticker); ticker = null; }
    $("total").textContent = s.total;
    $("limit").textContent = s.limit_s;
    if (s.phase === "instructions") { show("instructions"); return; }
    if (s.phase === "done") { $("answered").textContent = s.total; show("done"); return; }
    $("counter").textContent = "Question " + (s.position + 1) + " of " + s.total;
    $("problem").textContent = s.problem;
    const list = $("solution");
    list.replaceChildren();
    for (const line of s.solution) {
      const li = document.createElement("li");
      li.textContent = line;
      list.appendChild(li);
    }
    $("timeup").hidden = true;
    setButtons(true);
    show("question");
    deadline = Date.now() + s.remaining_s * 1000;
    tick();
    if (!$("correct").disabled) ticker = setInterval(tick, 250);
  }

  async function submit(answer) {
    if (busy || !state || state.phase !== "question") return;
    busy = true;
    setButtons(false);
    try {
      render(await call("/answer", {item: state.item, answer: answer}));
    } catch (e) {
      error("Could not record the answer (" + e.message + "); reload the page.");
    } finally {
      busy = false;
    }
  }

  $("start").addEventListener("click", async () => {
    $("start").disabled = true;
    try { render(await call("/start")); } catch (e) { error(e.message); }
  });
  $("correct").addEventListener("click", () => submit("correct"));
  $("incorrect").addEventListener("click", () => submit("incorrect"));
  call("").then(render, (e) => error(e.message));
})();
