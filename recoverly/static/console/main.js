// The admin console: sign-in, organization picker and the pages, routed by the URL hash.

import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { gql, savedToken, saveToken } from "./api.js";
import { Errors, asErrors, html } from "./ui.js";
import { BackupsPage } from "./backups.js";
import { RestoreWizard } from "./wizard.js";
import { RestoresPage } from "./restores.js";
import { AccessPage } from "./access.js";
import { AuditPage } from "./audit.js";

const ORG_KEY = "recoverly:organization";
const PAGES = [
  ["backups", "Backups", BackupsPage],
  ["restore", "Restore", RestoreWizard],
  ["restores", "Restores", RestoresPage],
  ["access", "Product access", AccessPage],
  ["audit", "Audit log", AuditPage],
];
const VIEWER = `query ConsoleViewer { viewer { id email name organizations { id name } } }`;

// `recoverly serve` prints /#token=…: the fragment never reaches the server.
function takeTokenFromUrl() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = (params.get("token") || "").trim();
  if (token) {
    saveToken(token);
    history.replaceState(null, "", `${location.pathname}#/backups`);
  }
}

function currentPage() {
  const name = location.hash.replace(/^#\/?/, "").split("?")[0];
  return PAGES.find(([key]) => key === name) || PAGES[0];
}

function SignIn({ onSignedIn, problem }) {
  const [token, setToken] = useState("");
  const [errors, setErrors] = useState(problem ? [problem] : []);
  const [busy, setBusy] = useState(false);
  const input = useRef(null);
  useEffect(() => input.current && input.current.focus(), []);
  async function submit(event) {
    event.preventDefault();
    const value = token.trim();
    if (!value) return setErrors([{ code: "INVALID_INPUT", message: "Paste your API token first." }]);
    setBusy(true);
    try {
      const data = await gql(VIEWER, {}, value);
      saveToken(value);
      onSignedIn(data.viewer);
    } catch (error) {
      const message = error.code === "UNAUTHENTICATED" ? "This token was refused: check it and try again." : error.message;
      setErrors([{ code: error.code, message }]);
    } finally {
      setBusy(false);
    }
  }
  return html`<main id="main" class="signin">
    <h1>Recoverly</h1>
    <p>Back up and restore your organization's Jira and Confluence sites.</p>
    <form onSubmit=${submit}>
      <label for="token">API token</label>
      <input id="token" ref=${input} type="password" autocomplete="off" value=${token}
        onInput=${(e) => setToken(e.currentTarget.value)} placeholder="the token that recoverly serve printed" />
      <button type="submit" disabled=${busy}>Sign in</button>
    </form>
    <${Errors} errors=${errors} />
    <p class="muted">The token is kept in this browser's local storage until you sign out.</p>
  </main>`;
}

function App() {
  const [viewer, setViewer] = useState(null);
  const [problem, setProblem] = useState(null);
  const [checking, setChecking] = useState(Boolean(savedToken()));
  const [page, setPage] = useState(currentPage);
  const [orgId, setOrgId] = useState(localStorage.getItem(ORG_KEY));
  const [wizard, setWizard] = useState({ step: 0 });
  const heading = useRef(null);

  useEffect(() => {
    const onHash = () => {
      // A sign-in link opened in a tab already on the console: start again with its token.
      if (new URLSearchParams(location.hash.slice(1)).get("token")) {
        takeTokenFromUrl();
        location.reload();
      } else {
        setPage(currentPage());
      }
    };
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  useEffect(() => {
    if (!savedToken()) return;
    gql(VIEWER).then(
      (data) => {
        setViewer(data.viewer);
        setChecking(false);
      },
      (error) => {
        // A refused token is handled by the "recoverly:unauthenticated" listener.
        if (error.code !== "UNAUTHENTICATED") setProblem(asErrors(error)[0]);
        setChecking(false);
      },
    );
  }, []);
  useEffect(() => {
    const refused = () => {
      saveToken(null);
      setViewer(null);
      setProblem({ code: "UNAUTHENTICATED", message: "Your token was refused: sign in again." });
    };
    addEventListener("recoverly:unauthenticated", refused);
    return () => removeEventListener("recoverly:unauthenticated", refused);
  }, []);
  const shown = useRef(false);
  useEffect(() => {
    // Focus follows navigation between pages, not the first page shown.
    if (shown.current && heading.current) heading.current.focus();
    shown.current = Boolean(heading.current);
  }, [page[0], Boolean(viewer)]);

  if (checking) return html`<p class="muted" role="status">Signing in…</p>`;
  if (!viewer) return html`<${SignIn} problem=${problem} onSignedIn=${(v) => { setProblem(null); setViewer(v); }} />`;

  const orgs = viewer.organizations;
  const org = orgs.find((o) => o.id === orgId) || orgs[0];
  function chooseOrg(id) {
    localStorage.setItem(ORG_KEY, id);
    setOrgId(id);
    setWizard({ step: 0 });
  }
  function signOut() {
    saveToken(null);
    localStorage.removeItem(ORG_KEY);
    setViewer(null);
    setWizard({ step: 0 });
  }
  const [key, title, Page] = page;
  return html`<a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); heading.current?.focus(); }}>Skip to content</a>
    <header class="top">
      <span class="brand">Recoverly</span>
      <nav aria-label="Console">
        <ul>${PAGES.map(([k, t]) => html`<li><a href=${`#/${k}`} aria-current=${k === key ? "page" : null}>${t}</a></li>`)}</ul>
      </nav>
      <div class="who">
        ${orgs.length > 1
          ? html`<label for="organization">Organization</label>
              <select id="organization" value=${org && org.id} onChange=${(e) => chooseOrg(e.currentTarget.value)}>
                ${orgs.map((o) => html`<option value=${o.id}>${o.name}</option>`)}
              </select>`
          : html`<span>${org ? org.name : ""}</span>`}
        <span class="email">${viewer.email}</span>
        <button type="button" class="secondary" onClick=${signOut}>Sign out</button>
      </div>
    </header>
    <main id="main">
      <h1 tabindex="-1" ref=${heading}>${title}</h1>
      ${org
        ? html`<${Page} key=${`${key}-${org.id}`} org=${org} viewer=${viewer} wizard=${wizard} setWizard=${setWizard} />`
        : html`<p>You administer no organization yet.</p>`}
    </main>`;
}

takeTokenFromUrl();
render(html`<${App} />`, document.getElementById("app"));
