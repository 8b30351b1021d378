import { Link } from "@tanstack/react-router";
import { useState } from "react";
import { authCall, authClient } from "../auth";
import { usePageTitle } from "../ui/title";
import { AuthForm, useSessionStart } from "./AuthForm";
import { AuthLayout } from "./AuthLayout";

/** A TOTP code is six digits; anything else typed in the code field is tried as a backup code. */
const isTotpCode = (code: string) => /^\d{6}$/.test(code);

export function SignIn({ redirect, reset }: { redirect?: string; reset?: boolean }) {
  usePageTitle("Sign in");
  // The account has two-factor sign-in on: the password was right, the session waits for a code.
  const [secondStep, setSecondStep] = useState(false);
  const signIn = useSessionStart((input: { email: string; password: string }) => authCall(authClient.signIn.email(input)), redirect, () => setSecondStep(true));
  const verify = useSessionStart(
    ({ code }: { code: string }) =>
      isTotpCode(code) ? authCall(authClient.twoFactor.verifyTotp({ code })) : authCall(authClient.twoFactor.verifyBackupCode({ code })),
    redirect,
  );
  if (secondStep) {
    return (
      <AuthLayout title="Enter your sign-in code">
        <p>Open your authenticator app and enter the 6-digit code it shows for Berth. Lost the app? Enter one of your backup codes instead.</p>
        <AuthForm mutation={verify} read={(f) => ({ code: f("code").replace(/\s+/g, "") })} submitLabel="Verify" pendingLabel="Verifying…">
          <label>
            Code
            <input name="code" type="text" inputMode="numeric" autoComplete="one-time-code" required maxLength={20} />
          </label>
        </AuthForm>
        <p>
          <button type="button" onClick={() => setSecondStep(false)}>
            Start again
          </button>
        </p>
      </AuthLayout>
    );
  }
  return (
    <AuthLayout title="Sign in to Berth">
      {reset ? (
        <p className="notice" role="status">
          Your password was changed, and every session of the account was signed out. Sign in with the new password.
        </p>
      ) : null}
      <AuthForm mutation={signIn} read={(f) => ({ email: f("email"), password: f("password") })} submitLabel="Sign in" pendingLabel="Signing in…">
        <label>
          Email
          <input name="email" type="email" autoComplete="email" required />
        </label>
        <label>
          Password
          <input name="password" type="password" autoComplete="current-password" required />
        </label>
      </AuthForm>
      <p>
        <Link to="/forgot-password">Forgot your password?</Link>
      </p>
      <p>
        New to Berth?{" "}
        <Link to="/sign-up" search={redirect ? { redirect } : {}}>
          Create an account
        </Link>
      </p>
    </AuthLayout>
  );
}
