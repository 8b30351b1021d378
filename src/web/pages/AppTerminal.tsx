/**
 * A terminal in an app's running container: xterm.js on the exec socket
 * (terminal-socket.ts). Loaded only when opened, so xterm.js never weighs on the first visit.
 * The terminal fills the window and tells the program its size; a dropped connection comes
 * back by itself within the session's grace period with what was missed; a read-only viewer
 * is told so; the end is said in words.
 */
import "@xterm/xterm/css/xterm.css";
import { FitAddon } from "@xterm/addon-fit";
import { type ITheme, Terminal } from "@xterm/xterm";
import { useQuery } from "@tanstack/react-query";
import { Link } from "@tanstack/react-router";
import { useEffect, useRef, useState } from "react";
import { can } from "../permissions";
import { appQuery, useOrg } from "../queries";
import { type TerminalEnd, type TerminalState, openTerminalSocket } from "../terminal-socket";
import { QueryState } from "../ui/ListState";
import { Page } from "../ui/Page";
import { usePageTitle } from "../ui/title";

const STATE_WORDS: Record<TerminalState, string> = { connecting: "Connecting…", open: "Connected", reconnecting: "Reconnecting…", ended: "Ended" };

export function AppTerminal(props: { orgSlug: string; projectId: string; appId: string; session?: string; view?: boolean }) {
  const { orgSlug, projectId, appId } = props;
  const { role, orgs } = useOrg(orgSlug);
  const query = useQuery(appQuery(projectId, appId));
  const app = query.data?.app;
  usePageTitle(app ? `Terminal · ${app.name}` : "Terminal");
  const allowed = can(role, "app:exec");
  // One terminal per visit: a new one when the page is opened again (or "Open a new terminal").
  const [attempt, setAttempt] = useState(0);

  return (
    <Page
      id="terminal-heading"
      title={app ? `Terminal in ${app.name}` : "Terminal"}
      subtitle={
        <Link to="/orgs/$orgSlug/projects/$projectId/apps/$appId" params={{ orgSlug, projectId, appId }}>
          back to the app
        </Link>
      }
    >
      <QueryState query={query} loading="Loading the app…" />
      {orgs.data && !allowed ? (
        <p className="error" role="alert">
          Your role in this organization ({role ?? "none"}) may not open terminals. Owners, admins and developers may.
        </p>
      ) : null}
      {app && allowed ? (
        <TerminalView
          key={attempt}
          appId={app.id}
          appName={app.name}
          session={attempt ? undefined : props.session}
          view={attempt ? false : props.view}
          onRestart={() => setAttempt((n) => n + 1)}
        />
      ) : null}
    </Page>
  );
}

/** The terminal's colours from the page's own (light or dark, as the theme says). */
function themeFromPage(): ITheme {
  const css = getComputedStyle(document.documentElement);
  const v = (name: string) => css.getPropertyValue(name).trim();
  return { background: v("--surface"), foreground: v("--text"), cursor: v("--text"), cursorAccent: v("--surface"), selectionBackground: v("--border") };
}

function TerminalView(props: { appId: string; appName: string; session?: string; view?: boolean; onRestart: () => void }) {
  const box = useRef<HTMLElement>(null);
  const [state, setState] = useState<TerminalState>("connecting");
  const [readOnly, setReadOnly] = useState(!!props.view);
  const [end, setEnd] = useState<TerminalEnd | null>(null);
  const [notice, setNotice] = useState("");
  const [size, setSize] = useState("");
  const [sessionId, setSessionId] = useState("");
  const restart = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    const element = box.current;
    if (!element) return;
    const term = new Terminal({
      fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace',
      fontSize: 14,
      cursorBlink: true,
      theme: themeFromPage(),
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(element);
    term.textarea?.setAttribute("aria-label", `Terminal input for ${props.appName}`);
    fit.fit();
    setSize(`${term.cols}×${term.rows}`);

    const socket = openTerminalSocket(
      props.appId,
      { cols: term.cols, rows: term.rows, session: props.session, view: props.view },
      {
        output: (bytes) => term.write(bytes),
        session: ({ id, readOnly: ro, skipped, resumed }) => {
          setSessionId(id);
          setReadOnly(ro);
          term.options.disableStdin = ro;
          if (skipped) term.write(`\r\n\x1b[2m[${skipped} bytes of output were lost while disconnected]\x1b[0m\r\n`);
          setNotice(resumed ? "Reconnected: output written meanwhile is shown." : "");
        },
        state: setState,
        ended: (e) => {
          setEnd(e);
          term.options.disableStdin = true;
          term.options.cursorBlink = false;
        },
      },
    );

    term.onData((data) => socket.input(data));
    term.onResize(({ cols, rows }) => {
      setSize(`${cols}×${rows}`);
      socket.resize(cols, rows);
    });
    // Escape then Tab leaves the terminal for the page (Tab alone belongs to the shell).
    let escaped = false;
    term.attachCustomKeyEventHandler((event) => {
      if (event.type !== "keydown") return true;
      if (escaped && event.key === "Tab") {
        escaped = false;
        // Otherwise the browser's own Tab moves focus on again, past the button.
        event.preventDefault();
        term.blur();
        restart.current?.focus();
        return false;
      }
      escaped = event.key === "Escape";
      return true;
    });

    // Fits the window (and the page around it) as it changes.
    const observer = new ResizeObserver(() => fit.fit());
    observer.observe(element);
    // Follows the page's theme: the select in the top bar, or the system's.
    const retheme = () => {
      term.options.theme = themeFromPage();
    };
    const themeObserver = new MutationObserver(retheme);
    themeObserver.observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
    const media = window.matchMedia("(prefers-color-scheme: dark)");
    media.addEventListener("change", retheme);
    term.focus();

    return () => {
      observer.disconnect();
      themeObserver.disconnect();
      media.removeEventListener("change", retheme);
      socket.close();
      term.dispose();
    };
  }, [props.appId, props.appName, props.session, props.view]);

  return (
    <section aria-labelledby="terminal-section-heading" className="terminal-page">
      <h2 id="terminal-section-heading" className="sr-only">
        Shell in {props.appName}
      </h2>
      <div className="actions start small">
        <span className={`badge live live-${state === "open" ? "live" : state === "ended" ? "reconnecting" : state}`} role="status" aria-label={`Terminal: ${STATE_WORDS[state]}`}>
          {STATE_WORDS[state]}
        </span>
        {readOnly ? (
          <span className="badge" role="status">
            Read-only: you are watching this terminal
          </span>
        ) : null}
        <span className="muted">Size {size}</span>
        <span className="muted">Esc then Tab leaves the terminal.</span>
        {sessionId && !readOnly && !end ? (
          // Anyone else with app:exec may watch through this address; for its opener too it is read-only.
          <a href={`${window.location.pathname}?session=${sessionId}&view=1`} target="_blank" rel="noopener noreferrer">
            Watch read-only in a new tab
          </a>
        ) : null}
        <button ref={restart} type="button" onClick={props.onRestart}>
          {end ? "Open a new terminal" : "New terminal"}
        </button>
      </div>
      {notice ? (
        <p className="muted small" role="status">
          {notice}
        </p>
      ) : null}
      {end ? (
        <p className={end.code === 1000 ? "notice" : "error"} role="alert" data-close-code={end.code}>
          {end.message}
        </p>
      ) : null}
      <section ref={box} className="terminal" aria-label={`Terminal in ${props.appName}`} />
    </section>
  );
}
