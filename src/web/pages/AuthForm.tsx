import { type UseMutationResult, useMutation, useQueryClient } from "@tanstack/react-query";
import { useNavigate } from "@tanstack/react-router";
import { needsSecondFactor } from "../auth";
import { ErrorMessage } from "../ui/ErrorMessage";

/**
 * The one form of the signed-out pages: it reads its fields, sends them through the
 * mutation, and shows the answer's refusal in words above the submit button.
 */
export function AuthForm<T>(props: {
  mutation: UseMutationResult<unknown, Error, T>;
  read: (field: (name: string) => string) => T;
  submitLabel: string;
  pendingLabel: string;
  children: React.ReactNode;
}) {
  const { mutation } = props;
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        const form = new FormData(e.currentTarget);
        mutation.mutate(props.read((name) => String(form.get(name) ?? "")));
      }}
    >
      {props.children}
      <ErrorMessage error={mutation.error} />
      <button type="submit" className="primary" disabled={mutation.isPending}>
        {mutation.isPending ? props.pendingLabel : props.submitLabel}
      </button>
    </form>
  );
}

/** Only a path of this site: never send someone elsewhere from a link's ?redirect=. */
export function safeRedirect(redirect: string | undefined): string {
  return redirect?.startsWith("/") && !redirect.startsWith("//") && !redirect.startsWith("/\\") ? redirect : "/";
}

/**
 * A call that starts a session (sign in, sign up): on success, nothing cached from before, and
 * on to where the person was going. A sign-in held back for a second factor calls
 * `onSecondStep` instead (the account has two-factor sign-in on).
 */
export function useSessionStart<T>(call: (input: T) => Promise<unknown>, redirect?: string, onSecondStep?: () => void) {
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  return useMutation({
    mutationFn: call,
    onSuccess: async (answer) => {
      if (onSecondStep && needsSecondFactor(answer)) return onSecondStep();
      queryClient.clear();
      // An href, not a route: the way back may carry its own query (an invitation's ?token=).
      await navigate({ href: safeRedirect(redirect) });
    },
  });
}
