// Paved's own script: follows a task's log live over Server-Sent Events.
// Every page is complete without it; it only adds live updates.
"use strict";

function followTaskLog(log) {
  const source = new EventSource(`${log.dataset.follow}?after=${log.dataset.after || 0}`);
  const status = document.getElementById("task-status");
  const progress = document.getElementById("task-progress");

  source.addEventListener("log", (event) => {
    const line = JSON.parse(event.data);
    if (log.querySelector(`[data-id="${line.id}"]`)) return;
    const span = document.createElement("span");
    span.className = `log-${line.level}`;
    span.dataset.id = line.id;
    span.textContent = `${new Date(line.at).toISOString().slice(11, 19)} ${line.message}\n`;
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.appendChild(span);
    if (atBottom) log.scrollTop = log.scrollHeight;
  });

  source.addEventListener("progress", (event) => {
    const { done, total } = JSON.parse(event.data);
    if (progress) {
      progress.max = total;
      progress.value = done;
      progress.textContent = `${done} of ${total}`;
    }
  });

  source.addEventListener("status", (event) => {
    const task = JSON.parse(event.data);
    source.close();
    if (status) {
      status.textContent = task.status;
      status.className = `status status-${task.status}`;
    }
    log.dataset.follow = "";
    document.querySelectorAll("form[action$='/cancel']").forEach((form) => form.remove());
  });
}

// A scaffolder run: its log lines, each step's status as it changes, and, when it ends,
// its summary (status and links) fetched again.
function followRun(log) {
  const source = new EventSource(`${log.dataset.follow}?after=${log.dataset.after || 0}`);

  function show(event) {
    const shown = JSON.parse(event.data);
    if (!shown.body || log.querySelector(`[data-id="${shown.id}"]`)) return;
    const span = document.createElement("span");
    span.className = `log-${shown.level || "info"}`;
    span.dataset.id = shown.id;
    const step = shown.body.stepId ? `[${shown.body.stepId}] ` : "";
    span.textContent = `${new Date(shown.createdAt).toISOString().slice(11, 19)} ${step}${shown.body.message}\n`;
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.appendChild(span);
    if (atBottom) log.scrollTop = log.scrollHeight;
    if (shown.body.stepId && shown.body.status) {
      const badge = document.querySelector(`[data-step="${shown.body.stepId}"] [data-step-status]`);
      if (badge) {
        badge.textContent = shown.body.status;
        badge.className = `status status-${shown.body.status}`;
      }
    }
  }

  async function finish(event) {
    show(event);
    source.close();
    log.dataset.follow = "";
    const summary = document.getElementById("run-summary");
    const answer = await fetch(log.dataset.summary, { headers: { Accept: "text/html" } });
    if (summary && answer.ok) summary.outerHTML = await answer.text();
  }

  source.addEventListener("log", show);
  source.addEventListener("completion", finish);
  source.addEventListener("cancelled", finish);
}

// A form checked as it is filled is swapped whole when the check answers; whatever was typed
// into the field being edited meanwhile is newer than the answer, so it is kept, with the
// caret where it was.
let editing = null;
document.addEventListener("htmx:beforeSwap", () => {
  const active = document.activeElement;
  editing = active && active.id && "value" in active && active.closest("#template-form")
    ? { id: active.id, value: active.value, start: active.selectionStart, end: active.selectionEnd }
    : null;
});
document.addEventListener("htmx:afterSwap", () => {
  if (!editing) return;
  const field = document.getElementById(editing.id);
  editing = editing.id && field && "value" in field ? editing : null;
  if (!editing) return;
  field.value = editing.value;
  field.focus();
  if (editing.start !== null && typeof field.setSelectionRange === "function") {
    try {
      field.setSelectionRange(editing.start, editing.end);
    } catch {
      // a field without a caret (number, select) keeps the browser's default
    }
  }
  editing = null;
});

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("#task-log[data-follow]").forEach((log) => {
    if (log.dataset.follow) followTaskLog(log);
  });
  document.querySelectorAll("#run-log[data-follow]").forEach((log) => {
    if (log.dataset.follow) followRun(log);
  });
});
