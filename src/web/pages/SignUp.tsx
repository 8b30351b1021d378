import { Link } from "@tanstack/react-router";
import { authCall, authClient } from "../auth";
import { usePageTitle } from "../ui/title";
import { AuthForm, useSessionStart } from "./AuthForm";
import { AuthLayout } from "./AuthLayout";

/** The seeds' sign-up fields (name, email, password); the account starts with a personal org and a project. */
export function SignUp({ redirect }: { redirect?: string }) {
  usePageTitle("Sign up");
  const signUp = useSessionStart((input: { name: string; email: string; password: string }) => authCall(authClient.signUp.email(input)), redirect);
  return (
    <AuthLayout title="Create your Berth account">
      <AuthForm
        mutation={signUp}
        read={(f) => ({ name: f("name"), email: f("email"), password: f("password") })}
        submitLabel="Create account"
        pendingLabel="Creating your account…"
      >
        <label>
          Name
          <input name="name" autoComplete="name" required maxLength={120} />
        </label>
        <label>
          Email
          <input name="email" type="email" autoComplete="email" required />
        </label>
        <label>
          Password
          <input name="password" type="password" autoComplete="new-password" required minLength={8} maxLength={128} aria-describedby="password-hint" />
        </label>
        <p id="password-hint" className="muted small">
          At least 8 characters.
        </p>
      </AuthForm>
      <p>
        Already have an account?{" "}
        <Link to="/sign-in" search={redirect ? { redirect } : {}}>
          Sign in
        </Link>
      </p>
    </AuthLayout>
  );
}
