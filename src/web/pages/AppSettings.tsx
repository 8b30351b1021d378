/**
 * An app's settings after creation: its image and tag, its port, its env vars. Env var values
 * are write-only: the API answers names with a mask, the page shows each name as "set" and
 * takes a new value or a removal, never showing what is stored.
 */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useId, useState } from "react";
import { type App, api, unwrap } from "../api/client";
import { ErrorMessage } from "../ui/ErrorMessage";
import { parseEnv } from "./Apps";

/** `registry:5000/team/web:v2` → image `registry:5000/team/web`, tag `v2`; a digest or no tag leaves the tag empty. */
export function splitImage(ref: string): { image: string; tag: string } {
  if (ref.includes("@")) return { image: ref, tag: "" };
  const colon = ref.lastIndexOf(":");
  return colon > ref.lastIndexOf("/") ? { image: ref.slice(0, colon), tag: ref.slice(colon + 1) } : { image: ref, tag: "" };
}

const joinImage = (image: string, tag: string) => (tag ? `${image}:${tag}` : image);

type Update = { image?: string; internal_port?: number; env_vars?: Record<string, string> };

const FIELD_WORDS: Record<keyof Update, string> = { image: "image", internal_port: "port", env_vars: "environment variables" };

export function AppSettings({ projectId, app, onSaved, onDeploy, deploying }: { projectId: string; app: App; onSaved: (message: string) => void; onDeploy: () => void; deploying: boolean }) {
  const ids = { image: useId(), tag: useId(), port: useId(), add: useId() };
  const queryClient = useQueryClient();
  const current = splitImage(app.image);
  const [replaced, setReplaced] = useState<Record<string, string>>({});
  const [removed, setRemoved] = useState<ReadonlySet<string>>(new Set());
  const [formError, setFormError] = useState<unknown>(null);
  /** What the last save changed, while the offer to deploy it stands. */
  const [pending, setPending] = useState<string[] | null>(null);
  const [saves, setSaves] = useState(0);
  const keys = Object.keys(app.env_vars).sort();

  const save = useMutation({
    mutationFn: (body: Update) => unwrap(api.PUT("/apps/{appId}", { params: { path: { appId: app.id } }, body })),
    onSuccess: async (updated, body) => {
      const fields = (Object.keys(body) as Array<keyof Update>).map((k) => FIELD_WORDS[k]);
      setReplaced({});
      setRemoved(new Set());
      setPending(fields);
      setSaves((n) => n + 1);
      onSaved(`Settings of ${updated.name} saved: ${fields.join(", ")}. Deploy to run them.`);
      await queryClient.invalidateQueries({ queryKey: ["projects", projectId, "apps"] });
    },
  });

  return (
    <>
      <form
        // After a save, or when another tab changed the app, the fields start again from it, anything typed gone.
        key={`${saves}|${app.image}|${app.internal_port}`}
        className="stack-form"
        aria-label="Settings"
        onSubmit={(e) => {
          e.preventDefault();
          setFormError(null);
          const data = new FormData(e.currentTarget);
          let added: Record<string, string>;
          try {
            added = parseEnv(String(data.get("add") ?? ""));
          } catch (err) {
            setFormError(err);
            return;
          }
          const body: Update = {};
          const image = joinImage(String(data.get("image")).trim(), String(data.get("tag")).trim());
          if (image !== app.image) body.image = image;
          const port = Number(data.get("port"));
          if (port !== app.internal_port) body.internal_port = port;
          const replacing = Object.entries(replaced).filter(([k, v]) => v !== "" && !removed.has(k));
          if (replacing.length || removed.size || Object.keys(added).length) {
            // What was read back (the mask) keeps a stored value; only what the person typed is sent.
            const kept = Object.fromEntries(keys.filter((k) => !removed.has(k)).map((k) => [k, app.env_vars[k]!]));
            body.env_vars = { ...kept, ...Object.fromEntries(replacing), ...added };
          }
          if (!Object.keys(body).length) {
            setFormError(new Error("Nothing to save: change the image, the tag, the port or a variable first."));
            return;
          }
          setPending(null);
          save.mutate(body);
        }}
      >
        <h2 className="section-title">Settings</h2>
        <div className="fields">
          <label htmlFor={ids.image}>Image</label>
          <input id={ids.image} name="image" required maxLength={512} defaultValue={current.image} autoComplete="off" spellCheck={false} />
          <label htmlFor={ids.tag}>Tag</label>
          <input id={ids.tag} name="tag" maxLength={128} pattern="[A-Za-z0-9_][A-Za-z0-9_.\-]*" defaultValue={current.tag} placeholder="latest" autoComplete="off" spellCheck={false} />
          <label htmlFor={ids.port}>Port it listens on</label>
          <input id={ids.port} name="port" type="number" required min={1} max={65535} step={1} defaultValue={app.internal_port} />
        </div>
        <fieldset className="env-vars">
          <legend>Environment variables</legend>
          <p className="muted small">Values are never shown once saved: type a new value to replace one, or remove it.</p>
          {keys.length ? (
            <ul className="env-list" aria-label="Variables set">
              {keys.map((k) => {
                const gone = removed.has(k);
                return (
                  <li key={k}>
                    <code>{k}</code>
                    <span className={gone ? "error small" : "muted small"}>{gone ? "will be removed" : replaced[k] ? "will be replaced" : "set"}</span>
                    <input
                      type="password"
                      aria-label={`New value for ${k}`}
                      placeholder="unchanged"
                      autoComplete="new-password"
                      disabled={gone}
                      value={replaced[k] ?? ""}
                      onChange={(e) => setReplaced((r) => ({ ...r, [k]: e.target.value }))}
                    />
                    <button
                      type="button"
                      className={gone ? undefined : "danger-outline"}
                      aria-pressed={gone}
                      aria-label={`Remove ${k}`}
                      onClick={() =>
                        setRemoved((s) => {
                          const next = new Set(s);
                          if (gone) next.delete(k);
                          else next.add(k);
                          return next;
                        })
                      }
                    >
                      {gone ? "Keep" : "Remove"}
                    </button>
                  </li>
                );
              })}
            </ul>
          ) : (
            <p className="muted small">None set.</p>
          )}
          <label htmlFor={ids.add}>Add variables (optional)</label>
          <textarea id={ids.add} name="add" rows={2} placeholder="NAME=value, one a line" autoComplete="off" spellCheck={false} aria-describedby={`${ids.add}-hint`} />
          <p id={`${ids.add}-hint`} className="muted small">
            A name that is already set gets the new value.
          </p>
        </fieldset>
        <div>
          <button type="submit" disabled={save.isPending}>
            {save.isPending ? "Saving…" : "Save settings"}
          </button>
        </div>
      </form>
      <ErrorMessage error={formError ?? save.error} />
      {pending ? (
        <section className="notice" aria-label="Saved settings">
          <p>
            Saved: {pending.join(", ")}. {app.container_id ? "The running container keeps the old settings until the app is deployed again." : "A deploy starts the app with them."}
          </p>
          <button
            type="button"
            className="primary"
            disabled={deploying}
            onClick={() => {
              setPending(null);
              onDeploy();
            }}
          >
            Deploy now
          </button>
        </section>
      ) : null}
    </>
  );
}
