// Backups: sites with "Back up now" and live progress, backup policies, the backups list.

import { useEffect, useState } from "preact/hooks";
import { gql, subscribe } from "./api.js";
import {
  ConfirmButton, Errors, FINAL_BACKUP, LOCATION_NAMES, Loading, PRODUCT_NAMES, Progress,
  asErrors, bytes, html, label, useLoad, useMore, when,
} from "./ui.js";

const POLICY_FIELDS = `id name schedule includeAttachments includeUsersAndGroups includePersonalSpaces
  storage active nextRunAt lastRunAt instance { id name product } customerBucket { bucket endpointUrl region prefix }`;
const BACKUP_FIELDS = `id status product createdAt completedAt sizeBytes location availableForRestore
  unavailableReason includesAttachments failureReason source { id name }
  progress { status itemsDone itemsTotal percent itemsPerSecond etaSeconds message }`;
const PAGE = `query ConsoleBackups($org: ID!) {
  organization(id: $org) {
    products { key name instances { id name url product operationInProgress } }
    backupPolicies(first: 20) { totalCount nodes { ${POLICY_FIELDS} } }
  }
  backups(organizationId: $org, first: 20) { totalCount pageInfo { hasNextPage endCursor } nodes { ${BACKUP_FIELDS} } }
}`;
const MORE_BACKUPS = `query ConsoleMoreBackups($org: ID!, $after: String) {
  backups(organizationId: $org, first: 20, after: $after) { pageInfo { hasNextPage endCursor } nodes { ${BACKUP_FIELDS} } }
}`;
const PROGRESS = `subscription ConsoleBackupProgress($id: ID!) {
  backupProgress(backupId: $id) { status itemsDone itemsTotal percent itemsPerSecond etaSeconds message }
}`;

export function BackupsPage({ org }) {
  const [data, error, reload] = useLoad(() => gql(PAGE, { org: org.id }), [org.id]);
  if (!data) return html`<${Loading} error=${error} what="backups" />`;
  const sites = data.organization.products.flatMap((p) => p.instances);
  return html`
    <${Sites} sites=${sites} backups=${data.backups.nodes} onChange=${reload} />
    <${Policies} sites=${sites} policies=${data.organization.backupPolicies.nodes} onChange=${reload} />
    <${BackupList} org=${org} connection=${data.backups} />`;
}

function Sites({ sites, backups, onChange }) {
  return html`<section aria-labelledby="sites-heading">
    <h2 id="sites-heading">Sites</h2>
    <ul class="cards">
      ${sites.map((site) => html`<${SiteCard} key=${site.id} site=${site}
        running=${backups.find((b) => b.source.id === site.id && !FINAL_BACKUP.includes(b.status))}
        onChange=${onChange} />`)}
    </ul>
  </section>`;
}

function SiteCard({ site, running, onChange }) {
  const [backup, setBackup] = useState(running || null);
  const [progress, setProgress] = useState(running ? running.progress : null);
  const [errors, setErrors] = useState([]);
  useEffect(() => {
    if (!backup || FINAL_BACKUP.includes(backup.status)) return undefined;
    return subscribe(PROGRESS, { id: backup.id }, {
      next: (d) => setProgress(d.backupProgress),
      error: (e) => setErrors(asErrors(e)),
      complete: () => onChange(),
    });
  }, [backup && backup.id]);
  async function backUp() {
    setErrors([]);
    try {
      const result = await gql(
        `mutation ConsoleRunBackup($site: ID!) { runBackup(input: { instanceId: $site }) {
          backup { id status progress { status itemsDone itemsTotal percent message } } errors { code message field } } }`,
        { site: site.id },
      );
      const payload = result.runBackup;
      if (payload.errors.length) return setErrors(payload.errors);
      setProgress(payload.backup.progress);
      setBackup(payload.backup);
    } catch (error) {
      setErrors(asErrors(error));
    }
  }
  async function cancel() {
    try {
      const result = await gql(
        `mutation ConsoleCancelBackup($id: ID!) { cancelBackup(input: { backupId: $id }) { backup { status } errors { code message field } } }`,
        { id: backup.id },
      );
      setErrors(result.cancelBackup.errors);
    } catch (error) {
      setErrors(asErrors(error));
    }
  }
  const active = progress && !FINAL_BACKUP.includes(progress.status);
  return html`<li class="card">
    <h3>${site.name}</h3>
    <p class="muted">${PRODUCT_NAMES[site.product]} · ${site.url}</p>
    ${progress ? html`<p>Backup: <span class="status">${label(progress.status)}</span></p>
      <${Progress} progress=${progress} name=${`Backup of ${site.name}`} />` : null}
    <div class="actions">
      <button type="button" disabled=${active || (!backup && site.operationInProgress)} onClick=${backUp}>Back up now</button>
      ${active ? html`<${ConfirmButton} question="Cancel this backup?" confirmLabel="Yes, cancel it" onConfirm=${cancel}>Cancel backup<//>` : null}
    </div>
    ${!backup && site.operationInProgress ? html`<p class="muted">A backup or restore is running on this site.</p>` : null}
    <${Errors} errors=${errors} />
  </li>`;
}

function Policies({ sites, policies, onChange }) {
  const [errors, setErrors] = useState([]);
  async function run(mutation, variables, key) {
    setErrors([]);
    try {
      const payload = (await gql(mutation, variables))[key];
      if (payload.errors.length) setErrors(payload.errors);
      else onChange();
    } catch (error) {
      setErrors(asErrors(error));
    }
  }
  const setActive = (policy, active) => run(
    `mutation ConsoleSetPolicyActive($id: ID!, $active: Boolean!) {
      setBackupPolicyActive(input: { policyId: $id, active: $active }) { policy { id active } errors { code message field } } }`,
    { id: policy.id, active }, "setBackupPolicyActive");
  const remove = (policy) => run(
    `mutation ConsoleDeletePolicy($id: ID!) { deleteBackupPolicy(input: { policyId: $id }) { deletedPolicyId errors { code message field } } }`,
    { id: policy.id }, "deleteBackupPolicy");
  return html`<section aria-labelledby="policies-heading">
    <h2 id="policies-heading">Backup policies</h2>
    <${Errors} errors=${errors} />
    ${policies.length
      ? html`<div class="table-wrap"><table>
          <thead><tr><th scope="col">Name</th><th scope="col">Site</th><th scope="col">Schedule</th>
            <th scope="col">Includes</th><th scope="col">Storage</th><th scope="col">Next run</th>
            <th scope="col">State</th><th scope="col">Actions</th></tr></thead>
          <tbody>${policies.map((p) => html`<tr key=${p.id}>
            <th scope="row">${p.name}</th>
            <td>${p.instance ? p.instance.name : "—"}</td>
            <td>${label(p.schedule)}</td>
            <td>${[p.includeAttachments && "attachments", p.includeUsersAndGroups && "users and groups",
                   p.includePersonalSpaces && "personal spaces"].filter(Boolean).join(", ") || "content only"}</td>
            <td>${p.storage === "INTERNAL" ? "Internal" : `Internal and bucket ${p.customerBucket ? p.customerBucket.bucket : ""}`}</td>
            <td>${p.active ? when(p.nextRunAt) : "—"}</td>
            <td>${p.active ? "Active" : "Inactive"}</td>
            <td class="actions">
              <button type="button" class="secondary" onClick=${() => setActive(p, !p.active)}>${p.active ? "Deactivate" : "Activate"}</button>
              <${ConfirmButton} question=${`Delete ${p.name}?`} confirmLabel="Yes, delete" onConfirm=${() => remove(p)}>Delete<//>
            </td>
          </tr>`)}</tbody>
        </table></div>`
      : html`<p class="muted">No backup policy yet.</p>`}
    <${PolicyForm} sites=${sites} onCreated=${onChange} />
  </section>`;
}

const EMPTY_BUCKET = { bucket: "", endpointUrl: "", region: "us-east-1", prefix: "", accessKeyId: "", secretAccessKey: "" };

function PolicyForm({ sites, onCreated }) {
  const [form, setForm] = useState({
    instanceId: sites[0] ? sites[0].id : "", name: "", schedule: "DAILY", includeAttachments: true,
    includeUsersAndGroups: true, includePersonalSpaces: false, storage: "INTERNAL", bucket: EMPTY_BUCKET,
  });
  const [errors, setErrors] = useState([]);
  const [saved, setSaved] = useState(null);
  const site = sites.find((s) => s.id === form.instanceId);
  const set = (key) => (e) => setForm({ ...form, [key]: e.currentTarget.type === "checkbox" ? e.currentTarget.checked : e.currentTarget.value });
  const setBucket = (key) => (e) => setForm({ ...form, bucket: { ...form.bucket, [key]: e.currentTarget.value } });
  async function submit(event) {
    event.preventDefault();
    setErrors([]);
    setSaved(null);
    const { bucket, ...rest } = form;
    const input = { ...rest, includePersonalSpaces: site && site.product === "CONFLUENCE" && form.includePersonalSpaces };
    if (form.storage === "INTERNAL_AND_CUSTOMER") {
      input.customerBucket = Object.fromEntries(Object.entries(bucket).map(([k, v]) => [k, v.trim() || null]));
      input.customerBucket.bucket = bucket.bucket.trim();
    }
    try {
      const payload = (await gql(
        `mutation ConsoleCreatePolicy($input: CreateBackupPolicyInput!) {
          createBackupPolicy(input: $input) { policy { id name } errors { code message field } } }`,
        { input },
      )).createBackupPolicy;
      if (payload.errors.length) return setErrors(payload.errors);
      setSaved(payload.policy.name);
      setForm({ ...form, name: "", bucket: EMPTY_BUCKET });
      onCreated();
    } catch (error) {
      setErrors(asErrors(error));
    }
  }
  return html`<form class="panel" onSubmit=${submit} aria-labelledby="new-policy">
    <h3 id="new-policy">New backup policy</h3>
    <div class="grid">
      <label>Site<select value=${form.instanceId} onChange=${set("instanceId")}>
        ${sites.map((s) => html`<option value=${s.id}>${s.name} (${PRODUCT_NAMES[s.product]})</option>`)}
      </select></label>
      <label>Name<input value=${form.name} onInput=${set("name")} placeholder="default: from the site" /></label>
      <label>Schedule<select value=${form.schedule} onChange=${set("schedule")}>
        <option value="ONCE">Once</option><option value="DAILY">Daily</option><option value="WEEKLY">Weekly</option>
      </select></label>
    </div>
    <fieldset><legend>What to include</legend>
      <label class="check"><input type="checkbox" checked=${form.includeAttachments} onChange=${set("includeAttachments")} /> Attachments</label>
      <label class="check"><input type="checkbox" checked=${form.includeUsersAndGroups} onChange=${set("includeUsersAndGroups")} /> Users and groups</label>
      ${site && site.product === "CONFLUENCE"
        ? html`<label class="check"><input type="checkbox" checked=${form.includePersonalSpaces} onChange=${set("includePersonalSpaces")} /> Personal spaces</label>`
        : null}
    </fieldset>
    <fieldset><legend>Storage</legend>
      <label class="check"><input type="radio" name="storage" value="INTERNAL" checked=${form.storage === "INTERNAL"} onChange=${set("storage")} /> Internal storage (kept 14 days)</label>
      <label class="check"><input type="radio" name="storage" value="INTERNAL_AND_CUSTOMER" checked=${form.storage === "INTERNAL_AND_CUSTOMER"} onChange=${set("storage")} /> Internal storage and my S3 bucket</label>
      ${form.storage === "INTERNAL_AND_CUSTOMER" ? html`<div class="grid">
        <label>Bucket<input required value=${form.bucket.bucket} onInput=${setBucket("bucket")} /></label>
        <label>Endpoint URL<input type="url" value=${form.bucket.endpointUrl} onInput=${setBucket("endpointUrl")} placeholder="default: AWS S3" /></label>
        <label>Region<input value=${form.bucket.region} onInput=${setBucket("region")} /></label>
        <label>Prefix<input value=${form.bucket.prefix} onInput=${setBucket("prefix")} /></label>
        <label>Access key ID<input autocomplete="off" value=${form.bucket.accessKeyId} onInput=${setBucket("accessKeyId")} /></label>
        <label>Secret access key<input type="password" autocomplete="off" value=${form.bucket.secretAccessKey} onInput=${setBucket("secretAccessKey")} /></label>
      </div>` : null}
    </fieldset>
    <button type="submit">Create policy</button>
    <${Errors} errors=${errors} />
    ${saved ? html`<p role="status">Policy “${saved}” created.</p>` : null}
  </form>`;
}

function BackupList({ org, connection }) {
  const [backups, hasMore, more, errors] = useMore(
    connection, (after) => gql(MORE_BACKUPS, { org: org.id, after }).then((d) => d.backups),
  );
  return html`<section aria-labelledby="backups-heading">
    <h2 id="backups-heading">Backups <span class="muted">(${connection.totalCount})</span></h2>
    <div class="table-wrap"><table>
      <thead><tr><th scope="col">Created</th><th scope="col">Site</th><th scope="col">Status</th>
        <th scope="col">Size</th><th scope="col">Location</th><th scope="col">Restore</th></tr></thead>
      <tbody>${backups.map((b) => html`<tr key=${b.id}>
        <td>${when(b.createdAt)}</td>
        <td>${b.source.name}</td>
        <td><span class=${`status status-${b.status.toLowerCase()}`}>${label(b.status)}</span></td>
        <td>${bytes(b.sizeBytes)}</td>
        <td>${b.location ? LOCATION_NAMES[b.location] : "No copy left"}</td>
        <td>${b.availableForRestore ? "Available" : html`<span class="reason">${b.unavailableReason || b.failureReason || "Not available yet"}</span>`}</td>
      </tr>`)}</tbody>
    </table></div>
    ${hasMore ? html`<p><button type="button" class="secondary" onClick=${more}>Show more backups</button></p>` : null}
    <${Errors} errors=${errors} />
  </section>`;
}
