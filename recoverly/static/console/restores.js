// The Restore table: every restore, filtered by status, with live progress for running
// ones (restoreProgress over graphql-transport-ws) and cancel with a confirmation.

import { useEffect, useState } from "preact/hooks";
import { gql, subscribe } from "./api.js";
import {
  ConfirmButton, Errors, FINAL_RESTORE, Loading, PRODUCT_NAMES, Progress, asErrors, html, label,
  useLoad, useMore, when,
} from "./ui.js";

const STATUSES = ["QUEUED", "VALIDATING", "IN_PROGRESS", "COMPLETED", "PARTIALLY_COMPLETED", "FAILED", "CANCELING", "CANCELED"];
const PROGRESS_FIELDS = "status phase itemsDone itemsTotal percent itemsPerSecond etaSeconds message";
const LIST = `query ConsoleRestores($org: ID!, $status: [RestoreStatus!], $after: String) {
  restores(organizationId: $org, status: $status, first: 20, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } nodes {
    id status phase createdAt startedAt finishedAt failureReason skippedSpaces conflictPolicy
    selection { projectKeys spaceKeys keyRenames { from to } }
    startedBy { email } destination { name } backup { product createdAt source { name } }
    progress { ${PROGRESS_FIELDS} } } }
}`;
const PROGRESS = `subscription ConsoleRestoreProgress($id: ID!) { restoreProgress(restoreId: $id) { ${PROGRESS_FIELDS} } }`;
const CANCEL = `mutation ConsoleCancelRestore($id: ID!) {
  cancelRestore(input: { restoreId: $id }) { restore { id status } errors { code message field } }
}`;

/** "Only HR, OPS (merge); HR as HR2": a selective restore's keys, policy and renames. */
function selectionText(restore) {
  const { projectKeys, spaceKeys, keyRenames } = restore.selection;
  const renames = keyRenames.map((r) => `${r.from} as ${r.to}`).join(", ");
  const text = `Only ${(projectKeys || spaceKeys || []).join(", ")} (${label(restore.conflictPolicy).toLowerCase()})`;
  return renames ? `${text}; ${renames}` : text;
}

function startedId() {
  const query = location.hash.split("?")[1] || "";
  return new URLSearchParams(query).get("started");
}

export function RestoresPage({ org }) {
  const [status, setStatus] = useState("");
  const [data, error, reload] = useLoad(
    () => gql(LIST, { org: org.id, status: status ? [status] : null }), [org.id, status],
  );
  const started = startedId();
  return html`<div class="filters">
      <label for="status-filter">Status</label>
      <select id="status-filter" value=${status} onChange=${(e) => setStatus(e.currentTarget.value)}>
        <option value="">All statuses</option>
        ${STATUSES.map((s) => html`<option value=${s}>${label(s)}</option>`)}
      </select>
      <button type="button" class="secondary" onClick=${reload}>Refresh</button>
    </div>
    ${started ? html`<p role="status" class="notice">Restore started: follow it below.</p>` : null}
    ${data
      ? html`<${RestoreTable} connection=${data.restores} fetchPage=${(after) => gql(LIST, { org: org.id, status: status ? [status] : null, after }).then((d) => d.restores)}
          started=${started} onFinal=${reload} />`
      : html`<${Loading} error=${error} what="restores" />`}`;
}

function RestoreTable({ connection, fetchPage, started, onFinal }) {
  const [restores, hasMore, more, errors] = useMore(connection, fetchPage);
  return html`<p class="muted">${connection.totalCount} restore${connection.totalCount === 1 ? "" : "s"}</p>
        <div class="table-wrap"><table class="restores">
          <thead><tr><th scope="col">Backup</th><th scope="col">Destination</th><th scope="col">Status</th>
            <th scope="col">Started by</th><th scope="col">Started</th><th scope="col">Finished</th>
            <th scope="col">Progress</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
          <tbody>${restores.map((r) => html`<${RestoreRow} key=${r.id} restore=${r} highlight=${r.id === started} onFinal=${onFinal} />`)}</tbody>
        </table></div>
    ${hasMore ? html`<p><button type="button" class="secondary" onClick=${more}>Show more restores</button></p>` : null}
    <${Errors} errors=${errors} />`;
}

function RestoreRow({ restore, highlight, onFinal }) {
  const [progress, setProgress] = useState(restore.progress);
  const [errors, setErrors] = useState([]);
  useEffect(() => {
    // A reloaded list may lag behind the live events: progress never goes backwards.
    const stored = restore.progress;
    setProgress((live) => (stored.itemsDone >= live.itemsDone || FINAL_RESTORE.includes(stored.status) ? stored : live));
  }, [restore]);
  useEffect(() => {
    if (FINAL_RESTORE.includes(restore.status)) return undefined;
    return subscribe(PROGRESS, { id: restore.id }, {
      next: (d) => setProgress(d.restoreProgress),
      error: (e) => setErrors(asErrors(e)),
      complete: onFinal,
    });
  }, [restore.id, restore.status]);
  async function cancel() {
    setErrors([]);
    try {
      const payload = (await gql(CANCEL, { id: restore.id })).cancelRestore;
      setErrors(payload.errors);
    } catch (e) {
      setErrors(asErrors(e));
    }
  }
  const status = progress.status;
  const name = `Restore of ${restore.backup.source.name} into ${restore.destination.name}`;
  return html`<tr class=${highlight ? "highlight" : ""} data-restore=${restore.id}>
    <td>${restore.backup.source.name} <span class="muted">${PRODUCT_NAMES[restore.backup.product]}, ${when(restore.backup.createdAt)}</span></td>
    <td>${restore.destination.name}${restore.selection ? html`<br /><span class="muted">${selectionText(restore)}</span>` : null}</td>
    <td><span class=${`status status-${status.toLowerCase()}`}>${label(status)}</span>
      ${progress.phase ? html`<br /><span class="muted">${label(progress.phase)}</span>` : null}
      ${restore.failureReason ? html`<br /><span class="reason">${restore.failureReason}</span>` : null}</td>
    <td>${restore.startedBy ? restore.startedBy.email : "—"}</td>
    <td>${when(restore.startedAt || restore.createdAt)}</td>
    <td>${when(restore.finishedAt)}</td>
    <td class="progress-cell"><${Progress} progress=${progress} name=${name} />
      ${restore.skippedSpaces.length ? html`<span class="muted">Skipped spaces: ${restore.skippedSpaces.join(", ")}</span>` : null}</td>
    <td>${FINAL_RESTORE.includes(status) || status === "CANCELING"
      ? null
      : html`<${ConfirmButton} question="Cancel this restore? What it restored so far is removed."
          confirmLabel="Yes, cancel it" onConfirm=${cancel}>Cancel<//>`}
      <${Errors} errors=${errors} /></td>
  </tr>`;
}
