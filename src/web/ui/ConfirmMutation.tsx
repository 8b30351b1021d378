import { ConfirmDialog } from "./ConfirmDialog";
import { ErrorMessage } from "./ErrorMessage";

/** What ConfirmMutation uses of a TanStack mutation that takes no input. */
type Mutation = { isPending: boolean; error: unknown; mutate: () => void; reset: () => void };

/**
 * A ConfirmDialog that runs `mutation` when confirmed: busy while it runs, its failure shown
 * in the dialog; cancelling closes it and forgets that failure. The mutation's onSuccess closes it.
 */
export function ConfirmMutation(props: { open: boolean; onClose: () => void; mutation: Mutation; title: string; confirmLabel: string; children: React.ReactNode }) {
  const m = props.mutation;
  return (
    <ConfirmDialog
      open={props.open}
      title={props.title}
      confirmLabel={props.confirmLabel}
      busy={m.isPending}
      onConfirm={() => m.mutate()}
      onCancel={() => {
        props.onClose();
        m.reset();
      }}
      error={<ErrorMessage error={m.error} />}
    >
      {props.children}
    </ConfirmDialog>
  );
}
