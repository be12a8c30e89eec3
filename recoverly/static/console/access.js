// Product access: the review notification for restored groups with their billing impact,
// decisions (each or all), decided reviews, grant or revoke for any group, billing.

import { useState } from "preact/hooks";
import { gql } from "./api.js";
import { ConfirmButton, Errors, Loading, PRODUCT_NAMES, asErrors, html, label, useLoad, when } from "./ui.js";

const PAGE = `query ConsoleAccess($org: ID!) {
  organization(id: $org) { billing { product billableUsers } }
  pendingAccessReviews(organizationId: $org) {
    id kind product billableUsersAdded createdAt restore { id destination { name } }
    group { id name memberCount instance { name } members(first: 10) { totalCount nodes { id displayName email } } }
  }
  accessReviews(organizationId: $org, status: [APPROVED, DENIED], first: 20) {
    totalCount nodes { id status product decidedAt decidedBy { email } group { name instance { name } } }
  }
}`;
const GROUPS = `query ConsoleGroups($org: ID!, $search: String) {
  organization(id: $org) { groups(search: $search, first: 50) { totalCount nodes {
    id name memberCount billableMemberCount productAccess instance { name product } } } }
}`;
const DECIDE = (name) => `mutation ConsoleDecide($ids: [ID!]!) {
  ${name}(input: { reviewIds: $ids }) { reviews { id status } errors { code message field } }
}`;
const ACCESS = (name) => `mutation ConsoleProductAccess($group: ID!, $product: ProductKey!) {
  ${name}(input: { groupId: $group, product: $product }) { group { id productAccess } errors { code message field } }
}`;

export function AccessPage({ org }) {
  const [data, error, reload] = useLoad(() => gql(PAGE, { org: org.id }), [org.id]);
  const [errors, setErrors] = useState([]);
  const [groupsTick, setGroupsTick] = useState(0);
  async function mutate(query, variables, key) {
    setErrors([]);
    try {
      const payload = (await gql(query, variables))[key];
      if (payload.errors.length) setErrors(payload.errors);
    } catch (e) {
      setErrors(asErrors(e));
    }
    reload();
    setGroupsTick((t) => t + 1);
  }
  if (!data) return html`<${Loading} error=${error} what="product access" />`;
  const pending = data.pendingAccessReviews;
  const decide = (kind, ids) => mutate(DECIDE(kind), { ids }, kind);
  return html`
    <section aria-labelledby="billing-heading">
      <h2 id="billing-heading">Billing</h2>
      <ul class="billing">${data.organization.billing.map((b) => html`<li>
        <span class="product">${PRODUCT_NAMES[b.product]}</span>
        <span class="billable" data-product=${b.product}>${b.billableUsers}</span> billable users</li>`)}</ul>
    </section>
    <${Errors} errors=${errors} />
    <section aria-labelledby="pending-heading">
      <h2 id="pending-heading">Waiting for review</h2>
      ${pending.length
        ? html`<div class="notice" role="status">
            ${pending.length} restored group${pending.length === 1 ? "" : "s"} wait${pending.length === 1 ? "s" : ""} for your review.
            Their product access is not applied until you approve it.
            <div class="actions">
              <button type="button" onClick=${() => decide("approveGroupAccess", pending.map((r) => r.id))}>Approve all</button>
              <button type="button" class="secondary" onClick=${() => decide("denyGroupAccess", pending.map((r) => r.id))}>Deny all</button>
            </div>
          </div>
          <ul class="cards">${pending.map((r) => html`<li class="card review" data-group=${r.group.name} data-kind=${r.kind} key=${r.id}>
            <h3>${r.group.name} <span class="muted">· ${PRODUCT_NAMES[r.product]} on ${r.group.instance ? r.group.instance.name : "—"}</span></h3>
            <p><strong class="impact">${r.billableUsersAdded} new billable user${r.billableUsersAdded === 1 ? "" : "s"}</strong>
              <span class="muted"> · ${r.group.memberCount} member${r.group.memberCount === 1 ? "" : "s"}, restored ${when(r.createdAt)}</span></p>
            ${r.kind === "MEMBERS" ? html`<p class="kind">Restored members wait to join this group, which already has access: approving adds them.</p>` : null}
            <details><summary>Members</summary><ul>
              ${r.group.members.nodes.map((m) => html`<li>${m.displayName} <span class="muted">${m.email}</span></li>`)}
              ${r.group.members.totalCount > r.group.members.nodes.length ? html`<li class="muted">and ${r.group.members.totalCount - r.group.members.nodes.length} more</li>` : null}
            </ul></details>
            <div class="actions">
              <button type="button" aria-label=${`Approve ${PRODUCT_NAMES[r.product]} access for ${r.group.name}`}
                onClick=${() => decide("approveGroupAccess", [r.id])}>Approve</button>
              <button type="button" class="secondary" aria-label=${`Deny ${PRODUCT_NAMES[r.product]} access for ${r.group.name}`}
                onClick=${() => decide("denyGroupAccess", [r.id])}>Deny</button>
            </div>
          </li>`)}</ul>`
        : html`<p class="muted">No restored group waits for review.</p>`}
    </section>
    <section aria-labelledby="decided-heading">
      <h2 id="decided-heading">Decided reviews</h2>
      ${data.accessReviews.nodes.length
        ? html`<div class="table-wrap"><table>
            <thead><tr><th scope="col">Group</th><th scope="col">Product</th><th scope="col">Decision</th>
              <th scope="col">By</th><th scope="col">When</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
            <tbody>${data.accessReviews.nodes.map((r) => html`<tr key=${r.id}>
              <th scope="row">${r.group.name} <span class="muted">${r.group.instance ? r.group.instance.name : ""}</span></th>
              <td>${PRODUCT_NAMES[r.product]}</td><td>${label(r.status)}</td>
              <td>${r.decidedBy ? r.decidedBy.email : "—"}</td><td>${when(r.decidedAt)}</td>
              <td>${r.status === "DENIED" ? html`<button type="button" class="secondary" onClick=${() => decide("approveGroupAccess", [r.id])}>Approve now</button>` : null}</td>
            </tr>`)}</tbody>
          </table></div>`
        : html`<p class="muted">No decision yet.</p>`}
    </section>
    <${Groups} org=${org} tick=${groupsTick} mutate=${mutate} />`;
}

function Groups({ org, tick, mutate }) {
  const [search, setSearch] = useState("");
  const [applied, setApplied] = useState("");
  const [data, error] = useLoad(() => gql(GROUPS, { org: org.id, search: applied || null }), [org.id, applied, tick]);
  return html`<section aria-labelledby="groups-heading">
    <h2 id="groups-heading">Groups</h2>
    <form class="filters" role="search" onSubmit=${(e) => { e.preventDefault(); setApplied(search.trim()); }}>
      <label for="group-search">Search groups</label>
      <input id="group-search" type="search" value=${search} onInput=${(e) => setSearch(e.currentTarget.value)} />
      <button type="submit" class="secondary">Search</button>
    </form>
    ${data
      ? html`<div class="table-wrap"><table>
          <thead><tr><th scope="col">Group</th><th scope="col">Site</th><th scope="col">Members</th>
            <th scope="col">Billable members</th><th scope="col">Product access</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
          <tbody>${data.organization.groups.nodes.map((g) => {
            const product = g.instance ? g.instance.product : null;
            const has = product && g.productAccess.includes(product);
            return html`<tr key=${g.id}>
              <th scope="row">${g.name}</th><td>${g.instance ? g.instance.name : "—"}</td>
              <td>${g.memberCount}</td><td>${g.billableMemberCount}</td>
              <td>${g.productAccess.map((p) => PRODUCT_NAMES[p]).join(", ") || "None"}</td>
              <td>${!product ? null : has
                ? html`<${ConfirmButton} question=${`Revoke ${PRODUCT_NAMES[product]} access for ${g.name}?`} confirmLabel="Yes, revoke"
                    onConfirm=${() => mutate(ACCESS("revokeProductAccess"), { group: g.id, product }, "revokeProductAccess")}>Revoke ${PRODUCT_NAMES[product]}<//>`
                : html`<button type="button" class="secondary"
                    onClick=${() => mutate(ACCESS("grantProductAccess"), { group: g.id, product }, "grantProductAccess")}>Grant ${PRODUCT_NAMES[product]}</button>`}</td>
            </tr>`;
          })}</tbody>
        </table></div>
        ${data.organization.groups.totalCount > data.organization.groups.nodes.length
          ? html`<p class="muted">Showing ${data.organization.groups.nodes.length} of ${data.organization.groups.totalCount}: search to narrow.</p>` : null}`
      : html`<${Loading} error=${error} what="groups" />`}
  </section>`;
}
