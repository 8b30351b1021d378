import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate } from "@tanstack/react-router";
import { authCall, authClient } from "../auth";
import { ErrorMessage } from "../ui/ErrorMessage";
import { usePageTitle } from "../ui/title";
import { AuthLayout } from "./AuthLayout";

/** The seeds' sign-up fields (name, email, password); the account starts with a personal org and a project. */
export function SignUp() {
  usePageTitle("Sign up");
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const signUp = useMutation({
    mutationFn: (input: { name: string; email: string; password: string }) => authCall(authClient.signUp.email(input)),
    onSuccess: async () => {
      queryClient.clear();
      await navigate({ to: "/" });
    },
  });
  return (
    <AuthLayout title="Create your Berth account">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const form = new FormData(e.currentTarget);
          signUp.mutate({ name: String(form.get("name")), email: String(form.get("email")), password: String(form.get("password")) });
        }}
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
        <ErrorMessage error={signUp.error} />
        <button type="submit" className="primary" disabled={signUp.isPending}>
          {signUp.isPending ? "Creating your account…" : "Create account"}
        </button>
      </form>
      <p>
        Already have an account? <Link to="/sign-in">Sign in</Link>
      </p>
    </AuthLayout>
  );
}
