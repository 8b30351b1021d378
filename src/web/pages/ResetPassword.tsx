import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate } from "@tanstack/react-router";
import { authCall, authClient } from "../auth";
import { usePageTitle } from "../ui/title";
import { AuthForm } from "./AuthForm";
import { AuthLayout } from "./AuthLayout";

/** Where the mailed reset link lands (`/reset-password?token=…`, src/auth/better-auth.ts). */
export function ResetPassword({ token }: { token?: string }) {
  usePageTitle("Set a new password");
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const reset = useMutation({
    mutationFn: async ({ password, repeat }: { password: string; repeat: string }) => {
      if (password !== repeat) throw new Error("The two passwords differ. Type the same new password twice.");
      return authCall(authClient.resetPassword({ newPassword: password, token: token ?? "" }));
    },
    onSuccess: async () => {
      // The reset signed out every session of the account, this browser's too.
      queryClient.clear();
      await navigate({ to: "/sign-in", search: { reset: true } });
    },
  });
  return (
    <AuthLayout title="Set a new password">
      {token ? (
        <AuthForm mutation={reset} read={(f) => ({ password: f("password"), repeat: f("repeat") })} submitLabel="Set new password" pendingLabel="Saving…">
          <label>
            New password
            <input name="password" type="password" autoComplete="new-password" required minLength={8} maxLength={128} aria-describedby="new-password-hint" />
          </label>
          <p id="new-password-hint" className="muted small">
            At least 8 characters. Every session of the account is signed out when it changes.
          </p>
          <label>
            New password again
            <input name="repeat" type="password" autoComplete="new-password" required minLength={8} maxLength={128} />
          </label>
        </AuthForm>
      ) : (
        <p>This address has no reset token. Open the link from the mail exactly as it came, or ask for a new one.</p>
      )}
      <p>
        <Link to="/forgot-password">Ask for a new reset link</Link>
      </p>
    </AuthLayout>
  );
}
