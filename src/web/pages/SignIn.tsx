import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate } from "@tanstack/react-router";
import { authCall, authClient } from "../auth";
import { ErrorMessage } from "../ui/ErrorMessage";
import { usePageTitle } from "../ui/title";
import { AuthLayout } from "./AuthLayout";

export function SignIn({ redirect }: { redirect?: string }) {
  usePageTitle("Sign in");
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const signIn = useMutation({
    mutationFn: (input: { email: string; password: string }) => authCall(authClient.signIn.email(input)),
    onSuccess: async () => {
      queryClient.clear();
      // Only a path of this site: never send someone elsewhere from a link's ?redirect=.
      const to = redirect?.startsWith("/") && !redirect.startsWith("//") ? redirect : "/";
      await navigate({ to });
    },
  });
  return (
    <AuthLayout title="Sign in to Berth">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const form = new FormData(e.currentTarget);
          signIn.mutate({ email: String(form.get("email")), password: String(form.get("password")) });
        }}
      >
        <label>
          Email
          <input name="email" type="email" autoComplete="email" required />
        </label>
        <label>
          Password
          <input name="password" type="password" autoComplete="current-password" required />
        </label>
        <ErrorMessage error={signIn.error} />
        <button type="submit" className="primary" disabled={signIn.isPending}>
          {signIn.isPending ? "Signing in…" : "Sign in"}
        </button>
      </form>
      <p>
        New to Berth? <Link to="/sign-up">Create an account</Link>
      </p>
    </AuthLayout>
  );
}
