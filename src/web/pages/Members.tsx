import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useNavigate } from "@tanstack/react-router";
import { useId, useRef, useState } from "react";
import { api, type Member, unwrap } from "../api/client";
import { sessionQuery } from "../auth";
import { assignableRoles, can, mayManageSeat } from "../permissions";
import { membersQuery, orgsQuery, useOrg } from "../queries";
import { ConfirmMutation } from "../ui/ConfirmMutation";
import { ErrorMessage } from "../ui/ErrorMessage";
import { formatDate } from "../ui/format";
import { Cards, Empty, QueryState } from "../ui/ListState";
import { Page } from "../ui/Page";
import { usePageTitle } from "../ui/title";

/** The org's members with their roles, and pending invitations; managing them only where the caller's role allows. */
export function Members({ orgSlug }: { orgSlug: string }) {
  usePageTitle("Members");
  const queryClient = useQueryClient();
  const { org, role } = useOrg(orgSlug);
  const session = useQuery(sessionQuery);
  const members = useQuery(membersQuery(orgSlug));
  const [status, setStatus] = useState("");
  const canManage = can(role, "member:manage");
  const refresh = async (message: string) => {
    setStatus(message);
    const { queryKey } = membersQuery(orgSlug);
    await queryClient.cancelQueries({ queryKey });
    await queryClient.invalidateQueries({ queryKey });
  };

  const active = members.data?.filter((m) => m.status === "active") ?? [];
  const pending = members.data?.filter((m) => m.status === "pending") ?? [];
  const me = session.data?.user.id;

  return (
    <Page id="members-heading" title="Members" subtitle={org ? `in ${org.name}` : null} status={status}>
      {canManage ? (
        <InviteForm orgSlug={orgSlug} actorRole={role} onInvited={refresh} />
      ) : role ? (
        <p className="muted">You are a {role} here. Only owners and admins can invite people, change roles or remove members.</p>
      ) : null}

      <QueryState query={members} loading="Loading members…" />
      {members.data ? (
        <>
          <h2 className="section-title">People</h2>
          <Cards label="Members" items={active}>
            {(m) => <MemberRow key={m.id} orgSlug={orgSlug} member={m} isMe={m.userId === me} actorRole={role} personalOrg={org?.personal ?? false} onChanged={refresh} />}
          </Cards>
          <h2 className="section-title">Pending invitations</h2>
          <Cards
            label="Pending invitations"
            items={pending}
            empty={
              <Empty>
                {canManage ? "No invitations are waiting. Invite someone by email above; they join when they open the link in the mail." : "No invitations are waiting."}
              </Empty>
            }
          >
            {(m) => <InvitationRow key={m.id} orgSlug={orgSlug} invitation={m} canManage={canManage} onChanged={refresh} />}
          </Cards>
        </>
      ) : null}
    </Page>
  );
}

function InviteForm({ orgSlug, actorRole, onInvited }: { orgSlug: string; actorRole?: string; onInvited: (message: string) => Promise<void> }) {
  const emailId = useId();
  const roleId = useId();
  const form = useRef<HTMLFormElement>(null);
  // The API invites as admin, developer or viewer, never above the inviter's own role.
  const roles = assignableRoles(actorRole, { owner: false });
  const invite = useMutation({
    mutationFn: (body: { email: string; role: "admin" | "developer" | "viewer" }) =>
      unwrap(api.POST("/org/{slug}/invitations", { params: { path: { slug: orgSlug } }, body })),
    onSuccess: async ({ invite: sent }) => {
      form.current?.reset();
      await onInvited(`Invited ${sent.email} as ${sent.role}. They join when they open the link in the mail.`);
    },
  });
  return (
    <>
      <form
        ref={form}
        className="inline-form"
        aria-label="Invite someone"
        onSubmit={(e) => {
          e.preventDefault();
          const data = new FormData(e.currentTarget);
          invite.mutate({ email: String(data.get("email")).trim(), role: String(data.get("role")) as "admin" | "developer" | "viewer" });
        }}
      >
        <label htmlFor={emailId}>Email to invite</label>
        <input id={emailId} name="email" type="email" required maxLength={254} placeholder="name@example.com" autoComplete="off" />
        <label htmlFor={roleId}>Role</label>
        <select id={roleId} name="role" defaultValue="developer">
          {roles.map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
        </select>
        <button type="submit" className="primary" disabled={invite.isPending}>
          {invite.isPending ? "Inviting…" : "Send invitation"}
        </button>
      </form>
      <ErrorMessage error={invite.error} />
    </>
  );
}

function MemberRow(props: {
  orgSlug: string;
  member: Member;
  isMe: boolean;
  actorRole?: string;
  personalOrg: boolean;
  onChanged: (message: string) => Promise<void>;
}) {
  const { member, orgSlug, isMe } = props;
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const who = member.name || member.email;
  const roleId = useId();
  const [confirming, setConfirming] = useState(false);
  const params = { path: { slug: orgSlug, id: member.id } };
  const manageable = !isMe && mayManageSeat(props.actorRole, member.role);
  const roles = assignableRoles(props.actorRole);
  // You may leave any org but your personal one.
  const mayLeave = isMe && !props.personalOrg;

  const changeRole = useMutation({
    mutationFn: (role: Member["role"]) => unwrap(api.PATCH("/org/{slug}/members/{id}", { params, body: { role } })),
    onSuccess: async (_ok, role) => props.onChanged(`${who} is now ${role}.`),
  });
  const remove = useMutation({
    mutationFn: () => unwrap(api.DELETE("/org/{slug}/members/{id}", { params })),
    onSuccess: async () => {
      setConfirming(false);
      if (isMe) {
        await queryClient.invalidateQueries({ queryKey: orgsQuery.queryKey });
        await navigate({ to: "/" });
        return;
      }
      await props.onChanged(`Removed ${who} from the organization.`);
    },
  });

  return (
    <li className="card">
      <div>
        <h3 className="card-title">
          {who}
          {isMe ? <span className="muted"> (you)</span> : null}
        </h3>
        <p className="muted small">
          {member.email} · <span className="badge">{member.role}</span> · joined {formatDate(member.joinedAt)}
        </p>
      </div>
      <div className="actions">
        {manageable ? (
          <form
            className="inline-form tight"
            aria-label={`Change the role of ${who}`}
            onSubmit={(e) => {
              e.preventDefault();
              changeRole.mutate(String(new FormData(e.currentTarget).get("role")) as Member["role"]);
            }}
          >
            <label htmlFor={roleId} className="sr-only">
              Role of {who}
            </label>
            <select id={roleId} name="role" defaultValue={member.role} key={member.role}>
              {roles.map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </select>
            <button type="submit" disabled={changeRole.isPending} aria-label={`Change role of ${who}`}>
              Change role
            </button>
          </form>
        ) : null}
        {manageable || mayLeave ? (
          <button type="button" className="danger-outline" onClick={() => setConfirming(true)} aria-label={isMe ? "Leave this organization" : `Remove ${who}`}>
            {isMe ? "Leave" : "Remove"}
          </button>
        ) : null}
      </div>
      <ErrorMessage error={changeRole.error} />
      <ConfirmMutation
        open={confirming}
        onClose={() => setConfirming(false)}
        mutation={remove}
        title={isMe ? "Leave this organization?" : `Remove ${who}?`}
        confirmLabel={isMe ? "Leave organization" : "Remove member"}
      >
        <p>
          {isMe
            ? "You lose access to its projects, hosts and keys at once. To come back, an owner or admin has to invite you again."
            : `${who} (${member.email}) loses access to this organization's projects, hosts and keys at once. Keys they made stop working unless an owner adopts them.`}
        </p>
      </ConfirmMutation>
    </li>
  );
}

function InvitationRow(props: { orgSlug: string; invitation: Member; canManage: boolean; onChanged: (message: string) => Promise<void> }) {
  const { invitation, orgSlug } = props;
  const [confirming, setConfirming] = useState(false);
  const params = { path: { slug: orgSlug, id: invitation.id } };
  const resend = useMutation({
    mutationFn: () => unwrap(api.POST("/org/{slug}/members/{id}/resend", { params })),
    onSuccess: async () => props.onChanged(`Sent the invitation to ${invitation.email} again, with a new link; the old link no longer works.`),
  });
  const revoke = useMutation({
    mutationFn: () => unwrap(api.DELETE("/org/{slug}/members/{id}", { params })),
    onSuccess: async () => {
      setConfirming(false);
      await props.onChanged(`Revoked the invitation of ${invitation.email}.`);
    },
  });
  return (
    <li className="card">
      <div>
        <h3 className="card-title">{invitation.email}</h3>
        <p className="muted small">
          invited as <span className="badge">{invitation.role}</span> on {formatDate(invitation.invitedAt)} · link expires {formatDate(invitation.expiresAt)}
        </p>
      </div>
      {props.canManage ? (
        <div className="actions">
          <button type="button" onClick={() => resend.mutate()} disabled={resend.isPending} aria-label={`Resend the invitation to ${invitation.email}`}>
            {resend.isPending ? "Sending…" : "Resend"}
          </button>
          <button type="button" className="danger-outline" onClick={() => setConfirming(true)} aria-label={`Revoke the invitation to ${invitation.email}`}>
            Revoke
          </button>
        </div>
      ) : null}
      <ErrorMessage error={resend.error} />
      <ConfirmMutation open={confirming} onClose={() => setConfirming(false)} mutation={revoke} title={`Revoke the invitation to ${invitation.email}?`} confirmLabel="Revoke invitation">
        <p>The link in the mail stops working at once. You can invite the address again later.</p>
      </ConfirmMutation>
    </li>
  );
}
