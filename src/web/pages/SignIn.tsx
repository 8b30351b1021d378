import { Link } from "@tanstack/react-router";
import { authCall, authClient } from "../auth";
import { usePageTitle } from "../ui/title";
import { AuthForm, useSessionStart } from "./AuthForm";
import { AuthLayout } from "./AuthLayout";

export function SignIn({ redirect, reset }: { redirect?: string; reset?: boolean }) {
  usePageTitle("Sign in");
  const signIn = useSessionStart((input: { email: string; password: string }) => authCall(authClient.signIn.email(input)), redirect);
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
