import { useMutation } from "@tanstack/react-query";
import { Link } from "@tanstack/react-router";
import { authCall, authClient } from "../auth";
import { usePageTitle } from "../ui/title";
import { AuthForm } from "./AuthForm";
import { AuthLayout } from "./AuthLayout";

/** Asks better-auth to mail a reset link; the answer is the same whether or not the address has an account. */
export function ForgotPassword() {
  usePageTitle("Reset your password");
  const request = useMutation({
    mutationFn: ({ email }: { email: string }) => authCall(authClient.requestPasswordReset({ email })).then(() => email),
  });
  return (
    <AuthLayout title="Reset your password">
      {request.isSuccess ? (
        <div role="status" className="notice">
          <p>
            If <strong>{request.data}</strong> has a Berth account, a link to set a new password is on its way there. The link works for an hour, once.
          </p>
          <p>No mail after a few minutes? Check the address and the spam folder, then ask again.</p>
        </div>
      ) : (
        <>
          <p className="muted">Enter the email of your account. We will mail you a link to set a new password.</p>
          <AuthForm mutation={request} read={(f) => ({ email: f("email") })} submitLabel="Mail me a reset link" pendingLabel="Sending…">
            <label>
              Email
              <input name="email" type="email" autoComplete="email" required />
            </label>
          </AuthForm>
        </>
      )}
      <p>
        Remembered it? <Link to="/sign-in">Sign in</Link>
      </p>
    </AuthLayout>
  );
}
