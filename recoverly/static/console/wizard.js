// The restore wizard, in the order of the product brief: product → backup → options →
// destination → review → restore. The choices live in the console's state, so an error
// from the server or a visit to another page loses none of them.

import { useEffect, useRef, useState } from "preact/hooks";
import { gql } from "./api.js";
import {
  Errors, LOCATION_NAMES, Loading, PRODUCT_NAMES, asErrors, bytes, counts, html, label, useLoad, when,
} from "./ui.js";

const STEPS = ["Product", "Backup", "Options", "Destination", "Review"];
const PRODUCTS = `query ConsoleProducts($org: ID!) {
  products(organizationId: $org) { key name instances { id name url product isEmpty operationInProgress } }
}`;
const BACKUPS = `query ConsoleRestorableBackups($org: ID!, $product: ProductKey!) {
  backups(organizationId: $org, product: $product, first: 50) { nodes {
    id status createdAt sizeBytes location availableForRestore unavailableReason
    includesAttachments includesUsersAndGroups entityCounts source { id name } } }
}`;
const DESTINATION_CHECK = `query ConsoleDestinationCheck($input: StartRestoreInput!) {
  restorePreview(input: $input) { skippedSpaces destinationEmpty errors { code message field } }
}`;
const PREVIEW = `query ConsoleRestorePreview($input: StartRestoreInput!) {
  restorePreview(input: $input) {
    itemsTotal entityCounts skippedSpaces attachments attachmentBytes destinationEmpty
    backup { id createdAt location source { name } } destination { id name url }
    accessReviews { groupName product kind heldMembers billableUsersAdded }
    items { kind key name action targetKey entityCounts
            diff { onlyInBackup identical different onlyInDestination } }
    errors { code message field }
  }
}`;
const START = `mutation ConsoleStartRestore($input: StartRestoreInput!) {
  startRestore(input: $input) { restore { id status } errors { code message field } }
}`;

function restoreInput(w) {
  return {
    backupId: w.backupId,
    destinationId: w.destinationId,
    includeAttachments: w.includeAttachments,
    includeUsersAndGroups: w.includeUsersAndGroups,
  };
}

export function RestoreWizard({ org, wizard, setWizard }) {
  const [products, error] = useLoad(() => gql(PRODUCTS, { org: org.id }), [org.id]);
  const heading = useRef(null);
  const first = useRef(true);
  useEffect(() => {
    if (first.current) first.current = false;
    else if (heading.current) heading.current.focus();
  }, [wizard.step]);
  if (!products) return html`<${Loading} error=${error} what="products" />`;
  const update = (changes) => setWizard({ ...wizard, ...changes });
  const go = (step) => update({ step, errors: [] });
  const Step = [ProductStep, BackupStep, OptionsStep, DestinationStep, ReviewStep][wizard.step];
  return html`<section class="wizard" aria-labelledby="step-heading">
    <ol class="steps">${STEPS.map((name, i) => html`<li aria-current=${i === wizard.step ? "step" : null}
      class=${i < wizard.step ? "done" : ""}>${name}</li>`)}</ol>
    <h2 id="step-heading" tabindex="-1" ref=${heading}>Step ${wizard.step + 1} of ${STEPS.length}: ${STEPS[wizard.step]}</h2>
    <${Step} org=${org} products=${products.products} wizard=${wizard} update=${update} go=${go} />
  </section>`;
}

function Nav({ go, step, canNext, nextLabel = "Next", onNext }) {
  return html`<div class="wizard-nav">
    ${step > 0 ? html`<button type="button" class="secondary" onClick=${() => go(step - 1)}>Back</button>` : null}
    <button type="button" disabled=${!canNext} onClick=${onNext || (() => go(step + 1))}>${nextLabel}</button>
  </div>`;
}

function ProductStep({ products, wizard, update, go }) {
  const choose = (key) => update({ product: key, backupId: null, destinationId: null });
  return html`<fieldset><legend>Which product do you want to restore?</legend>
      ${products.map((p) => html`<label class="choice">
        <input type="radio" name="product" value=${p.key} checked=${wizard.product === p.key} onChange=${() => choose(p.key)} />
        <span><strong>${p.name}</strong> <span class="muted">${p.instances.length} site${p.instances.length === 1 ? "" : "s"}</span></span>
      </label>`)}
    </fieldset>
    <${Nav} go=${go} step=${0} canNext=${Boolean(wizard.product)} />`;
}

function BackupStep({ org, wizard, update, go }) {
  const [data, error] = useLoad(() => gql(BACKUPS, { org: org.id, product: wizard.product }), [wizard.product]);
  if (!data) return html`<${Loading} error=${error} what="backups" />`;
  const backups = data.backups.nodes;
  const choose = (b) => update({
    backupId: b.id, backup: b, includeAttachments: b.includesAttachments,
    includeUsersAndGroups: b.includesUsersAndGroups, destinationId: null,
  });
  return html`<fieldset><legend>Choose a ${PRODUCT_NAMES[wizard.product]} backup</legend>
      ${backups.length ? null : html`<p>No ${PRODUCT_NAMES[wizard.product]} backup yet: create a backup policy and run a backup on the Backups page.</p>`}
      ${backups.map((b) => html`<label class=${`choice${b.availableForRestore ? "" : " disabled"}`}>
        <input type="radio" name="backup" value=${b.id} disabled=${!b.availableForRestore}
          checked=${wizard.backupId === b.id} onChange=${() => choose(b)} />
        <span><strong>${b.source.name}</strong>, ${when(b.createdAt)} · ${label(b.status)} · ${bytes(b.sizeBytes)}
          <br />${b.availableForRestore
            ? html`<span class="muted">Stored in: ${LOCATION_NAMES[b.location]}</span>`
            : html`<span class="reason">${b.unavailableReason}</span>`}</span>
      </label>`)}
    </fieldset>
    <${Nav} go=${go} step=${1} canNext=${Boolean(wizard.backupId)} />`;
}

function OptionsStep({ wizard, update, go }) {
  const b = wizard.backup;
  return html`<dl class="facts">
      <dt>Backup of</dt><dd>${b.source.name}</dd>
      <dt>Made</dt><dd>${when(b.createdAt)}</dd>
      <dt>Stored in</dt><dd>${LOCATION_NAMES[b.location]}</dd>
      <dt>Size</dt><dd>${bytes(b.sizeBytes)}</dd>
      <dt>Contents</dt><dd>${counts(b.entityCounts)}</dd>
    </dl>
    <fieldset><legend>What to restore</legend>
      <label class="check"><input type="checkbox" checked=${wizard.includeAttachments} disabled=${!b.includesAttachments}
        onChange=${(e) => update({ includeAttachments: e.currentTarget.checked })} /> Restore attachments
        ${b.includesAttachments ? null : html`<span class="muted">(this backup has none)</span>`}</label>
      <label class="check"><input type="checkbox" checked=${wizard.includeUsersAndGroups} disabled=${!b.includesUsersAndGroups}
        onChange=${(e) => update({ includeUsersAndGroups: e.currentTarget.checked })} /> Restore users and groups
        ${b.includesUsersAndGroups ? null : html`<span class="muted">(this backup has none)</span>`}</label>
    </fieldset>
    <${Nav} go=${go} step=${2} canNext=${true} />`;
}

function DestinationStep({ products, wizard, update, go }) {
  const sites = products.find((p) => p.key === wizard.product).instances;
  const [checks, error, recheck] = useLoad(
    () => Promise.all(sites.map((site) => gql(DESTINATION_CHECK, { input: restoreInput({ ...wizard, destinationId: site.id }) })
      .then((d) => [site.id, d.restorePreview]))).then(Object.fromEntries),
    [wizard.backupId, wizard.includeAttachments, wizard.includeUsersAndGroups],
  );
  if (!checks) return html`<${Loading} error=${error} what="destinations" />`;
  const usable = (id) => checks[id] && !checks[id].errors.length;
  return html`<fieldset><legend>Where should it be restored?</legend>
      ${sites.map((site) => {
        const check = checks[site.id];
        const ok = usable(site.id);
        return html`<label class=${`choice${ok ? "" : " disabled"}`} data-site=${site.name}>
          <input type="radio" name="destination" value=${site.id} disabled=${!ok}
            checked=${ok && wizard.destinationId === site.id} onChange=${() => update({ destinationId: site.id })} />
          <span><strong>${site.name}</strong> <span class="muted">${site.url}</span>
            ${ok ? null : html`<br /><span class="reason">Unavailable: ${check.errors.map((e) => e.message).join("; ")}</span>`}
            ${ok && check.skippedSpaces.length
              ? html`<br /><span class="skipped">Spaces that exist there and will be skipped: ${check.skippedSpaces.join(", ")}</span>`
              : null}
            ${ok && !check.skippedSpaces.length && wizard.product === "CONFLUENCE" ? html`<br /><span class="muted">No space will be skipped.</span>` : null}
          </span>
        </label>`;
      })}
    </fieldset>
    <p><button type="button" class="secondary" onClick=${recheck}>Check the sites again</button></p>
    <${Nav} go=${go} step=${3} canNext=${usable(wizard.destinationId)} nextLabel="Review" />`;
}

const ACTION_NAMES = { CREATE: "Create", SKIP: "Skip", RENAME: "Rename to", MERGE: "Merge" };

/** Per project or space: what the restore does, what it writes, and the diff with the site. */
function Items({ items }) {
  if (!items.length) return null;
  const kind = items[0].kind === "PROJECT" ? "Project" : "Space";
  return html`<table class="items">
    <thead><tr><th>${kind}</th><th>Action</th><th>Will be restored</th>
      <th title="Issues or pages: only in the backup / identical / different / only in the destination">Compared with the destination</th></tr></thead>
    <tbody>${items.map((i) => html`<tr key=${i.key} data-key=${i.key}>
      <td><strong>${i.key}</strong> <span class="muted">${i.name}</span></td>
      <td class="action">${ACTION_NAMES[i.action]}${i.action === "RENAME" ? ` ${i.targetKey}` : ""}</td>
      <td>${counts(i.entityCounts)}</td>
      <td class="diff">${i.diff
        ? `${i.diff.onlyInBackup} only in the backup, ${i.diff.identical} identical, ${i.diff.different} different, ${i.diff.onlyInDestination} only in the destination`
        : html`<span class="muted">not in the destination</span>`}</td>
    </tr>`)}</tbody></table>`;
}

function ReviewStep({ wizard, update, go }) {
  const [preview, error, reload] = useLoad(() => gql(PREVIEW, { input: restoreInput(wizard) }), []);
  const [starting, setStarting] = useState(false);
  if (!preview) return html`<${Loading} error=${error} what="the preview" />`;
  const p = preview.restorePreview;
  async function start() {
    setStarting(true);
    try {
      const payload = (await gql(START, { input: restoreInput(wizard) })).startRestore;
      if (payload.errors.length) {
        update({ errors: payload.errors });
        reload();
      } else {
        update({ step: 0, product: null, backupId: null, destinationId: null, errors: [], started: payload.restore.id });
        location.hash = `#/restores?started=${encodeURIComponent(payload.restore.id)}`;
      }
    } catch (e) {
      update({ errors: asErrors(e) });
    } finally {
      setStarting(false);
    }
  }
  const errors = wizard.errors && wizard.errors.length ? wizard.errors : p.errors;
  return html`<dl class="facts">
      <dt>Backup</dt><dd>${p.backup.source.name}, ${when(p.backup.createdAt)} (${LOCATION_NAMES[p.backup.location]})</dd>
      <dt>Destination</dt><dd>${p.destination.name} <span class="muted">${p.destination.url}</span></dd>
      <dt>Attachments</dt><dd>${wizard.includeAttachments ? `${p.attachments} (${bytes(p.attachmentBytes)})` : "Not restored"}</dd>
      <dt>Users and groups</dt><dd>${wizard.includeUsersAndGroups ? "Restored" : "Not restored"}</dd>
      <dt>Will be restored</dt><dd>${counts(p.entityCounts)} <span class="muted">(${p.itemsTotal.toLocaleString()} items)</span></dd>
      ${p.skippedSpaces.length ? html`<dt>Skipped spaces</dt><dd class="skipped">${p.skippedSpaces.join(", ")}</dd>` : null}
    </dl>
    <${Items} items=${p.items} />
    <h3>Product access reviews</h3>
    ${p.accessReviews.length
      ? html`<p>Restored groups get their product access back, and restored members join a group that has access, only after you approve it:</p>
        <ul class="reviews">${p.accessReviews.map((r) => html`<li data-kind=${r.kind}>
          <strong>${r.groupName}</strong>, ${PRODUCT_NAMES[r.product]}${r.kind === "MEMBERS" ? ` (${r.heldMembers} restored member${r.heldMembers === 1 ? "" : "s"})` : ""}: approving adds${" "}<span class="impact">${r.billableUsersAdded}</span> new billable user${r.billableUsersAdded === 1 ? "" : "s"}</li>`)}</ul>`
      : html`<p class="muted">This restore creates no access review: billing does not change.</p>`}
    <${Errors} errors=${errors} />
    <${Nav} go=${go} step=${4} canNext=${!starting} nextLabel="Restore" onNext=${start} />`;
}
