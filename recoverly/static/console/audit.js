// The audit log: who did what, when, on which objects, with filters and paging.

import { useEffect, useState } from "preact/hooks";
import { gql } from "./api.js";
import { Errors, asErrors, html, when } from "./ui.js";

const EVENTS = `query ConsoleAudit($org: ID!, $filter: AuditEventFilter, $after: String) {
  auditEvents(organizationId: $org, filter: $filter, first: 50, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    nodes { id action at actor { id email } targetType targetIds details }
  }
}`;
const ACTIONS = [
  "backup.start", "backup.cancel", "backup_policy.create", "backup_policy.update", "backup_policy.activate",
  "backup_policy.deactivate", "backup_policy.delete", "restore.start", "restore.cancel",
  "access_review.approve", "access_review.deny", "product_access.grant", "product_access.revoke",
];

function isoOrNull(local) {
  return local ? new Date(local).toISOString() : null;
}

export function AuditPage({ org, viewer }) {
  const [form, setForm] = useState({ action: "", mine: false, since: "", until: "" });
  const [filter, setFilter] = useState({});
  const [pages, setPages] = useState(null);
  const [errors, setErrors] = useState([]);
  async function load(after) {
    setErrors([]);
    try {
      const data = await gql(EVENTS, { org: org.id, filter, after: after || null });
      setPages((old) => ({
        ...data.auditEvents,
        nodes: after && old ? [...old.nodes, ...data.auditEvents.nodes] : data.auditEvents.nodes,
      }));
    } catch (e) {
      setErrors(asErrors(e));
    }
  }
  useEffect(() => { load(null); }, [filter]);
  function apply(event) {
    event.preventDefault();
    const actions = form.action.split(",").map((a) => a.trim()).filter(Boolean);
    setFilter({
      action: actions.length ? actions : null,
      actorId: form.mine ? viewer.id : null,
      since: isoOrNull(form.since),
      until: isoOrNull(form.until),
    });
  }
  const set = (key) => (e) => setForm({ ...form, [key]: e.currentTarget.type === "checkbox" ? e.currentTarget.checked : e.currentTarget.value });
  return html`<form class="panel filters" onSubmit=${apply} aria-label="Audit filters">
      <label>Actions <input list="audit-actions" value=${form.action} onInput=${set("action")} placeholder="e.g. restore.start, backup.cancel" /></label>
      <datalist id="audit-actions">${ACTIONS.map((a) => html`<option value=${a} />`)}</datalist>
      <label>From <input type="datetime-local" value=${form.since} onInput=${set("since")} /></label>
      <label>Until <input type="datetime-local" value=${form.until} onInput=${set("until")} /></label>
      <label class="check"><input type="checkbox" checked=${form.mine} onChange=${set("mine")} /> Only mine</label>
      <button type="submit">Apply filters</button>
    </form>
    <${Errors} errors=${errors} />
    ${pages ? html`<p class="muted">${pages.totalCount} event${pages.totalCount === 1 ? "" : "s"}</p>
      <div class="table-wrap"><table class="audit">
        <thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">Action</th>
          <th scope="col">Target</th><th scope="col">Details</th></tr></thead>
        <tbody>${pages.nodes.map((e) => html`<tr key=${e.id}>
          <td>${when(e.at)}</td><td>${e.actor ? e.actor.email : "System"}</td><td><code>${e.action}</code></td>
          <td>${e.targetType} <span class="muted ids">${e.targetIds.join(", ")}</span></td>
          <td><code class="details">${e.details ? JSON.stringify(e.details) : ""}</code></td>
        </tr>`)}</tbody>
      </table></div>
      ${pages.pageInfo.hasNextPage ? html`<button type="button" class="secondary" onClick=${() => load(pages.pageInfo.endCursor)}>Load more</button>` : null}`
      : html`<p class="muted" role="status">Loading the audit log…</p>`}`;
}
