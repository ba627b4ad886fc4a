"use strict";
(function () {
  const token = location.pathname.split("/")[2];
  const api = "/api/admin/" + token;
  const $ = (id) => document.getElementById(id);

  function row(cells) {
    const tr = document.createElement("tr");
    for (const c of cells) {
      const td = document.createElement("td");
      td.textContent = c;
      tr.appendChild(td);
    }
    return tr;
  }

  async function refresh() {
    try {
      const r = await fetch(api + "/progress");
      const p = await r.json();
      if (!r.ok) throw new Error(p.error);
      $("name").textContent = p.campaign;
      const judges = Object.entries(p.judges);
      const done = judges.filter(([, j]) => j.answered === j.assigned).length;
      $("summary").textContent = p.judgments + " judgments; " + done + " of " +
          judges.length + " judges done; " + p.limit_s + " s per solution";
      const ck = $("checkpoints").tBodies[0];
      ck.replaceChildren(...Object.values(p.checkpoints).map((c) => row([
          c.label, c.answered, c.assigned,
          c.answered ? (c.right / c.answered).toFixed(3) : "-"])));
      const jt = $("judges").tBodies[0];
      jt.replaceChildren(...judges.map(([id, j]) => row([
          id, j.started ? "yes" : "no", j.answered + " / " + j.assigned, j.timeouts])));
    } catch (e) {
      $("error").textContent = "Could not load progress: " + e.message;
      $("error").hidden = false;
    }
  }
  $("csv").href = api + "/export.csv";
  $("jsonl").href = api + "/export.jsonl";
  refresh();
  setInterval(refresh, 5000);
})();
