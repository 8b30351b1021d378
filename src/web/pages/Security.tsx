import { queryOptions, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useMemo, useState } from "react";
import { renderSVG } from "uqr";
import { api, unwrap } from "../api/client";
import type { components } from "../api/openapi.gen";
import { CopyField } from "../ui/CopyField";
import { ErrorMessage } from "../ui/ErrorMessage";
import { QueryState } from "../ui/ListState";
import { Page } from "../ui/Page";
import { usePageTitle } from "../ui/title";

type Enrolment = components["schemas"]["MfaEnrolment"];

/** The setup link as a QR code (uqr: an SVG, drawn here; the secret goes to no other service). Dark on light in either theme, as scanners need. */
function SetupQr({ otpauthUrl }: { otpauthUrl: string }) {
  const src = useMemo(() => `data:image/svg+xml;charset=utf-8,${encodeURIComponent(renderSVG(otpauthUrl, { border: 2 }))}`, [otpauthUrl]);
  return <img className="qr-code" src={src} alt="QR code of the setup link, for your authenticator app to scan" width={192} height={192} />;
}

const meQuery = queryOptions({
  queryKey: ["me"],
  queryFn: ({ signal }) => unwrap(api.GET("/me", { signal })),
});

/** A 6-digit code field, labelled, for confirming or turning off two-factor sign-in. */
function CodeForm(props: { label: string; submitLabel: string; pendingLabel: string; mutation: { mutate: (code: string) => void; isPending: boolean; error: Error | null }; danger?: boolean }) {
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        props.mutation.mutate(String(new FormData(e.currentTarget).get("code") ?? "").replace(/\s+/g, ""));
      }}
    >
      <label>
        {props.label}
        <input name="code" type="text" inputMode="numeric" autoComplete="one-time-code" pattern="\s*\d{3}\s*\d{3}\s*" required maxLength={7} />
      </label>
      <ErrorMessage error={props.mutation.error} />
      <div className="actions start">
        <button type="submit" className={props.danger ? "danger" : "primary"} disabled={props.mutation.isPending}>
          {props.mutation.isPending ? props.pendingLabel : props.submitLabel}
        </button>
      </div>
    </form>
  );
}

/**
 * Two-factor sign-in: set it up (a secret for an authenticator app, backup codes), confirm it
 * with a code, turn it off with a code. Suble's /account/mfa/* routes, which the signed-in
 * session may call without the password.
 */
export function Security() {
  usePageTitle("Sign-in security");
  const queryClient = useQueryClient();
  const me = useQuery(meQuery);
  const [enrolment, setEnrolment] = useState<Enrolment | null>(null);
  const [status, setStatus] = useState("");
  const done = async (message: string) => {
    setEnrolment(null);
    setStatus(message);
    await queryClient.invalidateQueries({ queryKey: meQuery.queryKey });
  };
  const enable = useMutation({
    mutationFn: () => unwrap(api.POST("/account/mfa/enable")),
    onSuccess: (answer) => {
      setStatus("");
      setEnrolment(answer);
    },
  });
  const confirm = useMutation({
    mutationFn: (code: string) => unwrap(api.POST("/account/mfa/confirm", { body: { code } })),
    onSuccess: () => done("Two-factor sign-in is on. Signing in now asks for a code from your app."),
  });
  const disable = useMutation({
    mutationFn: (code: string) => unwrap(api.POST("/account/mfa/disable", { body: { code } })),
    onSuccess: () => done("Two-factor sign-in is off. Signing in asks for your password only."),
  });
  const on = me.data?.mfaEnabled === true;
  return (
    <Page id="security-heading" title="Sign-in security" status={status}>
      <QueryState query={me} loading="Reading your account…" />
      {me.data ? (
        <section className="job" aria-labelledby="two-factor-heading">
          <h2 id="two-factor-heading">Two-factor sign-in</h2>
          <p>
            <strong>{on ? "On" : "Off"}.</strong>{" "}
            {on
              ? "Signing in asks for your password and a 6-digit code from your authenticator app (or a backup code)."
              : "Signing in asks for your password only. Add a code from an authenticator app (1Password, Google Authenticator, Aegis, …) so a stolen password is not enough."}
          </p>
          {on ? (
            <CodeForm label="Current code from your app" submitLabel="Turn off two-factor sign-in" pendingLabel="Turning off…" mutation={disable} danger />
          ) : enrolment ? (
            <section aria-labelledby="enrol-heading">
              <h3 id="enrol-heading">Set up your authenticator app</h3>
              <p>Scan the code with your authenticator app, or type the secret key into it, or open the setup link on the device that has the app. Berth shows them only now.</p>
              <SetupQr otpauthUrl={enrolment.otpauthUrl} />
              <CopyField label="Secret key" value={enrolment.secret} />
              <CopyField label="Setup link (otpauth://)" value={enrolment.otpauthUrl} hint={<a href={enrolment.otpauthUrl}>Open in an authenticator app on this device</a>} />
              <CopyField
                label="Backup codes"
                value={enrolment.backupCodes.join("\n")}
                hint="Each signs in once instead of a code, if you lose the app. Keep them somewhere safe."
              />
              <CodeForm label="6-digit code from your app" submitLabel="Turn on two-factor sign-in" pendingLabel="Checking…" mutation={confirm} />
            </section>
          ) : (
            <div className="actions start">
              <button type="button" className="primary" onClick={() => enable.mutate()} disabled={enable.isPending}>
                {enable.isPending ? "Making a secret…" : "Set up two-factor sign-in"}
              </button>
            </div>
          )}
          <ErrorMessage error={enable.error} />
        </section>
      ) : null}
    </Page>
  );
}
