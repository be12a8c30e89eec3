// Shared view pieces: the html tag, formatting, progress bars, errors, confirmations.

import { h } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import htm from "htm";

export const html = htm.bind(h);

export const PRODUCT_NAMES = { JIRA: "Jira", CONFLUENCE: "Confluence" };
export const LOCATION_NAMES = { INTERNAL_STORAGE: "Internal storage", CUSTOMER_STORAGE: "Customer storage" };
export const FINAL_RESTORE = ["COMPLETED", "PARTIALLY_COMPLETED", "FAILED", "CANCELED"];
export const FINAL_BACKUP = ["COMPLETED", "INCOMPLETE", "FAILED", "EXPIRED", "CANCELED"];

export function label(value) {
  if (!value) return "";
  const words = String(value).toLowerCase().replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function bytes(size) {
  if (size === null || size === undefined) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = size;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return null;
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function counts(entityCounts) {
  if (!entityCounts) return "—";
  return Object.entries(entityCounts)
    .map(([kind, n]) => `${n} ${kind.replace(/_/g, " ")}`)
    .join(", ");
}

/** A progress bar with its figures: percent, items, rate and time left when known. */
export function Progress({ progress, name }) {
  if (!progress) return null;
  const percent = Math.round(progress.percent * 10) / 10;
  const rate = progress.itemsPerSecond;
  const left = duration(progress.etaSeconds);
  return html`<div class="progress">
    <div role="progressbar" aria-label=${name} aria-valuemin="0" aria-valuemax="100"
      aria-valuenow=${percent} aria-valuetext=${`${percent}%`} class="bar">
      <span style=${`width: ${Math.min(100, percent)}%`}></span>
    </div>
    <span class="figures">
      <span class="percent">${percent}%</span>
      ${" "}${progress.itemsDone.toLocaleString()} / ${progress.itemsTotal.toLocaleString()} items
      ${rate ? html`<span class="rate">, ${Math.round(rate).toLocaleString()} items/s</span>` : null}
      ${left ? html`<span class="eta">, ${left} left</span>` : null}
    </span>
    ${progress.message ? html`<span class="message">${progress.message}</span>` : null}
  </div>`;
}

/** Mutation errors ([UserError]) or one failure, announced to screen readers. */
export function Errors({ errors }) {
  if (!errors || !errors.length) return null;
  return html`<div class="errors" role="alert">
    <ul>${errors.map((e) => html`<li><strong>${e.code ? label(e.code) : "Error"}:</strong> ${e.message}</li>`)}</ul>
  </div>`;
}

export function asErrors(error) {
  return [{ code: error.code || "ERROR", message: error.message }];
}

/** A button asking for confirmation in place before running ``action``. */
export function ConfirmButton({ children, question, confirmLabel, onConfirm, disabled }) {
  const [asking, setAsking] = useState(false);
  const keep = useRef(null);
  useEffect(() => {
    if (asking && keep.current) keep.current.focus();
  }, [asking]);
  if (!asking) {
    return html`<button type="button" class="secondary" disabled=${disabled} onClick=${() => setAsking(true)}>${children}</button>`;
  }
  return html`<span class="confirm" role="group" aria-label=${question}>
    <span>${question}</span>
    <button type="button" class="danger" onClick=${() => { setAsking(false); onConfirm(); }}>${confirmLabel}</button>
    <button type="button" ref=${keep} class="secondary" onClick=${() => setAsking(false)}>No</button>
  </span>`;
}

/** Loads data with ``load()`` whenever ``deps`` change; returns [data, error, reload]. */
export function useLoad(load, deps) {
  const [state, setState] = useState({ data: null, error: null });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    load().then(
      (data) => live && setState({ data, error: null }),
      (error) => live && setState({ data: null, error }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return [state.data, state.error, () => setTick((t) => t + 1)];
}

export function Loading({ error, what }) {
  if (error) return html`<${Errors} errors=${asErrors(error)} />`;
  return html`<p class="muted" role="status">Loading ${what}…</p>`;
}

/**
 * The nodes of a connection plus the pages loaded after it with ``fetchPage(cursor)``;
 * returns [nodes, hasMore, more, errors]. A new first page drops the pages after it.
 */
export function useMore(connection, fetchPage) {
  const [extra, setExtra] = useState({ nodes: [], pageInfo: null });
  const [errors, setErrors] = useState([]);
  useEffect(() => setExtra({ nodes: [], pageInfo: null }), [connection]);
  const pageInfo = extra.pageInfo || connection.pageInfo;
  async function more() {
    setErrors([]);
    try {
      const page = await fetchPage(pageInfo.endCursor);
      setExtra({ nodes: [...extra.nodes, ...page.nodes], pageInfo: page.pageInfo });
    } catch (error) {
      setErrors(asErrors(error));
    }
  }
  return [[...connection.nodes, ...extra.nodes], pageInfo.hasNextPage, more, errors];
}
