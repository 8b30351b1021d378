/**
 * The wire protocol between the control plane and host agents, shared by both
 * ends (the agent imports this file directly) and validated on receipt.
 * It imports nothing but zod so that Node can load it as-is.
 */
import { z } from "zod";

export const AGENT_PROTOCOL_VERSION = 1;

export const JobProgress = z.object({
  step: z.number().int().min(0).max(10_000),
  total: z.number().int().min(1).max(10_000),
  percent: z.number().min(0).max(100),
  message: z.string().max(500),
});
export type JobProgress = z.infer<typeof JobProgress>;

const appRef = {
  app_id: z.string().max(64),
  slug: z.string().max(63),
  /** `{slug}-app.{base_domain}`: the name Caddy routes to the app. */
  hostname: z.string().max(253),
};

/** The VM an instance job is about: null vmid and node until its create job reported them. */
const instanceRef = {
  instance_id: z.string().max(64),
  vmid: z.number().int().min(100).max(999_999_999).nullable(),
  node: z.string().max(64).nullable(),
};

/** A compute plan as the node applies it: cores, memory, and the boot disk's size (it only grows). */
export const InstancePlanSpec = z.object({
  code: z.string().max(64),
  cores: z.number().int().min(1).max(512),
  memory_mb: z.number().int().min(128).max(16_777_216),
  disk_gb: z.number().int().min(1).max(1_048_576),
});
export type InstancePlanSpec = z.infer<typeof InstancePlanSpec>;

/** Most containers one app runs behind its route (Dockup's autoscale `max_replicas`). */
export const MAX_REPLICAS = 10;

/** A single-line OpenSSH public key (Suble's rule). */
export const SSH_PUBLIC_KEY = /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-[a-z0-9-]+) [A-Za-z0-9+/=]+( \S.*)?$/;
const sshKey = z.string().max(16_384).regex(SSH_PUBLIC_KEY);

/** What an instance's OS looks like to cloud-init: its hostname, its default user and their keys. */
const guest = {
  /** The VM template on the node to clone (the OS image's template name). */
  template: z.string().max(128),
  hostname: z.string().max(63),
  /** The image's default user (cloud-init `ciuser`); the password is set for it and for root. */
  ciuser: z.string().max(32),
  ssh_keys: z.array(sshKey).max(32),
  /**
   * The job sets a password: the agent fetches it for its lease (`GET /agent/leases/{lease}/env`,
   * `password`), so it never travels in a payload, a queue message or a log.
   */
  has_password: z.literal(true),
};

export const POWER_ACTIONS = ["start", "stop", "shutdown", "reboot", "reset"] as const;
export type PowerAction = (typeof POWER_ACTIONS)[number];

/**
 * What an instance job reports when it finishes (`result` of the finish report), all optional:
 * the VM's id and node (create), its address, its power state after the job, and for an SSH
 * key whether it was added or already there.
 */
export const InstanceJobResult = z.object({
  vmid: z.number().int().min(100).max(999_999_999).optional(),
  node: z.string().max(64).optional(),
  ipv4: z.string().max(45).nullable().optional(),
  power_state: z.enum(["running", "stopped"]).optional(),
  added: z.boolean().optional(),
  already_present: z.boolean().optional(),
});
export type InstanceJobResult = z.infer<typeof InstanceJobResult>;

/**
 * Jobs a host runs. Payloads never hold secrets in clear: an app's env vars
 * are fetched by the agent for its lease (`GET /agent/leases/{lease}/env`), and so is
 * an instance's password.
 */
export const JobPayload = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("host.exec"),
    command: z.string().min(1).max(8192),
    timeout_seconds: z.number().int().min(1).max(3600),
  }),
  /**
   * Open an SSH connection from this host to `host:port` as `username` with the profile's
   * credentials (fetched for the lease: `GET /agent/leases/{lease}/env`, `ssh`) and, when
   * `command` is set, run it there, sending its output (at most `output_max_bytes` a stream)
   * to `POST /agent/leases/{lease}/command-output` before finishing. The server's host key must
   * match `host_key_fingerprint` when one is pinned; otherwise the job fails with `host_key_mismatch`.
   * Finishes with `host_key_fingerprint` (the key seen), `exit_code` and `duration_ms`.
   */
  z.object({
    type: z.literal("ssh.exec"),
    profile_id: z.string().max(64),
    host: z.string().min(1).max(253),
    port: z.number().int().min(1).max(65535),
    username: z.string().min(1).max(64),
    host_key_fingerprint: z.string().max(128).nullable(),
    command: z.string().min(1).max(8192).nullable(),
    command_id: z.string().max(64).nullable(),
    timeout_seconds: z.number().int().min(1).max(3600),
    output_max_bytes: z.number().int().min(1024).max(1024 * 1024),
  }),
  /** Pull, create (labelled with app, deployment and job), start, wait for the port, switch the route, stop the old one. */
  z.object({
    type: z.literal("app.deploy"),
    ...appRef,
    deployment_id: z.string().max(64),
    image: z.string().max(512),
    internal_port: z.number().int().min(1).max(65535),
    command: z.string().max(4096).nullable(),
    cpu_limit: z.number().positive().max(256),
    memory_limit_mb: z.number().int().min(4).max(1_048_576),
    /** The app has env vars to fetch for this lease. */
    has_env: z.boolean(),
    /** The image's registry has credentials in the org, fetched with the env vars. */
    has_registry_auth: z.boolean().default(false),
    /** Seconds the new container gets to answer on its port. */
    health_timeout_seconds: z.number().int().min(1).max(600),
    /** Named volumes to mount, made on the host when first mounted and kept after. */
    volumes: z
      .array(z.object({ name: z.string().regex(/^berth-vol-[A-Za-z0-9_-]{1,80}$/), mount_path: z.string().min(2).max(512) }))
      .max(32)
      .default([]),
    /**
     * An uploaded image tarball to load instead of pulling: the agent fetches it for its lease
     * (`GET /agent/leases/{lease}/image`), `docker load`s it and tags what it holds as `image`.
     */
    upload: z.object({ size_bytes: z.number().int().min(1) }).nullable().default(null),
    /**
     * Source to build instead of pulling: the agent shallow-clones `branch` of `repo_url`
     * (http or https, no credentials), builds it with its Dockerfile (or one generated for the
     * language its files tell) through dockerd's builder, tags the result as `image`, and
     * finishes with the commit built (`commit`). `has_token`: the repository is private on
     * GitHub; the clone authenticates with the linked account's token, fetched for the lease
     * with the env vars (`git_token`) and sent as an HTTP header, never in the URL or a log.
     */
    git: z
      .object({
        repo_url: z.string().max(2048).regex(/^https?:\/\/[^\s@]+$/),
        branch: z.string().min(1).max(255).regex(/^[^\s-][^\s]*$/),
        has_token: z.boolean().default(false),
      })
      .nullable()
      .default(null),
    /** How many containers (replicas) to run behind the app's route; each is started and answers before the route moves. */
    replicas: z.number().int().min(1).max(MAX_REPLICAS).default(1),
  }),
  /**
   * Make the app's current deployment run exactly `replicas` healthy containers: replicas that
   * are not running are removed, missing ones are made as copies of a running one (same image,
   * env, limits, volumes: the deployed version, not the app's newer settings) and must answer
   * on `internal_port` before the route takes them; extra ones leave the route, drain and stop.
   * Finishes with `container_id` (the first replica), `replicas` (running now) and `upstream`.
   */
  z.object({
    type: z.literal("app.scale"),
    ...appRef,
    replicas: z.number().int().min(1).max(MAX_REPLICAS),
    /** Why: `autoscale` (CPU), `config` (min/max changed), `replace` (a replica died). */
    reason: z.enum(["autoscale", "config", "replace"]),
    internal_port: z.number().int().min(1).max(65535),
    health_timeout_seconds: z.number().int().min(1).max(600),
  }),
  z.object({ type: z.enum(["app.start", "app.stop", "app.restart", "app.remove"]), ...appRef }),
  /** New limits applied to the running container live (`docker update`), no restart. */
  z.object({ type: z.literal("app.update"), ...appRef, cpu_limit: z.number().positive().max(256), memory_limit_mb: z.number().int().min(4).max(1_048_576) }),
  /**
   * Clone `template` into a new VM (`vmid_hint` is the id to try first; the node may give
   * another), apply the plan, grow the disk, set cloud-init (hostname, user, password, keys),
   * start it and wait for its address. Finishes with `vmid`, `node`, `ipv4`, `power_state`.
   */
  z.object({
    type: z.literal("instance.create"),
    instance_id: z.string().max(64),
    vmid_hint: z.number().int().min(100).max(999_999_999).nullable(),
    ...guest,
    plan: InstancePlanSpec,
    networks: z.array(z.string().max(64)).max(16),
  }),
  /** A power action; finishes with the VM's `power_state`. */
  z.object({ type: z.literal("instance.power"), ...instanceRef, action: z.enum(POWER_ACTIONS) }),
  /** New cores and memory (applied at the next boot if the VM runs) and a bigger disk; never a smaller one. */
  z.object({ type: z.literal("instance.resize"), ...instanceRef, plan: InstancePlanSpec, previous_disk_gb: z.number().int().min(1) }),
  /** Wipe and reinstall from `template`, keeping the vmid and address; `backup` asks for a safety backup first. */
  z.object({ type: z.literal("instance.rebuild"), ...instanceRef, image_id: z.string().max(64), ...guest, disk_gb: z.number().int().min(1), backup: z.boolean() }),
  /** Set the password (fetched for the lease) for root and `ciuser`, through the guest agent. */
  z.object({ type: z.literal("instance.reset_password"), ...instanceRef, ciuser: z.string().max(32), has_password: z.literal(true) }),
  /** Add one key to `user`'s authorized_keys unless it is there; finishes with `added` or `already_present`. */
  z.object({ type: z.literal("instance.ssh_key"), ...instanceRef, user: z.string().max(32), public_key: sshKey }),
  /** Stop and destroy the VM and its disks; `final_backup` asks for a backup first. A VM already gone is success. */
  z.object({ type: z.literal("instance.delete"), ...instanceRef, hostname: z.string().max(63), final_backup: z.boolean() }),
]);
export type JobPayload = z.infer<typeof JobPayload>;
export type InstanceJobType = Extract<JobPayload["type"], `instance.${string}`>;
export const INSTANCE_JOB_TYPES = JobPayload.options.map((o) => o.shape.type).flatMap((t) => ("options" in t ? t.options : [t.value])).filter((t): t is InstanceJobType => t.startsWith("instance."));

/** A job leased to one agent; every report about it must carry `lease_id`. */
export const Lease = z.object({
  job_id: z.string().regex(/^job_[0-9a-z]{1,64}$/),
  attempt: z.number().int().min(1),
  lease_id: z.string(),
  /** Seconds the lease lives without a renewal; renew at a third of it. */
  lease_ttl: z.number().int().positive(),
  /** The job may have run before under an expired lease: look for what that attempt left before acting. */
  reconcile: z.boolean(),
  /**
   * Epoch ms (the control plane's clock) at which the job fails if it has not ended. Work that
   * waits on something outside (a node that does not answer) gives up a little before it and
   * fails with its own reason. Absent from control planes before it was added.
   */
  deadline_at: z.number().int().positive().optional(),
  payload: JobPayload,
});
export type Lease = z.infer<typeof Lease>;

/** A terminal session's id: `trm_` and 32 lowercase hex digits (128 random bits). */
export const TERMINAL_SESSION_ID = /^trm_[0-9a-f]{32}$/;

/** Control plane → agent over the WebSocket. */
export const ServerMessage = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("hello"),
    host_id: z.string(),
    heartbeat_interval: z.number().int().positive(),
    lease_ttl: z.number().int().positive(),
    protocol: z.number().int(),
  }),
  z.object({ type: z.literal("lease"), lease: Lease }),
  /** Stop this work: the job was cancelled or passed its deadline. */
  z.object({ type: z.literal("cancel"), job_id: z.string(), lease_id: z.string() }),
  z.object({ type: z.literal("heartbeat_ack"), at: z.number() }),
  /** A question for the agent that needs an answer now (an app's recent logs, its stats); answered by `rpc_reply`. */
  z.object({ type: z.literal("rpc"), id: z.string(), method: z.enum(["app.logs", "app.stats", "host.containers"]), params: z.object({ app_id: z.string(), tail: z.number().int().optional() }) }),
  /**
   * Someone watches this app's logs: stream its container's lines from `since` (ISO 8601, inclusive) until `unfollow`,
   * leaving out the first `skip` lines at exactly `since` (already delivered: times are to the millisecond, and
   * several lines, identical ones too, can share one).
   */
  z.object({ type: z.literal("follow"), app_id: z.string(), since: z.string().nullable(), skip: z.number().int().nonnegative().default(0) }),
  z.object({ type: z.literal("unfollow"), app_id: z.string() }),
  /**
   * Someone opened a terminal in this app's running container: open the session's own socket
   * (`GET /agent/terminals/{session_id}`), start `cmd` there with a TTY of `cols` x `rows`, and
   * carry its bytes over that socket (see TerminalFrame). Only this message rides the host's socket.
   */
  z.object({
    type: z.literal("terminal_open"),
    session_id: z.string().regex(TERMINAL_SESSION_ID),
    /**
     * What the TTY is attached to: `app` (a Docker exec in the app's running container, `app_id`),
     * `ssh` (an interactive shell over SSH from this host to `ssh`, credentials fetched with
     * `GET /agent/terminals/{session_id}/secrets`), `host` (a shell on this host itself, through a
     * throwaway privileged helper container: root on the host).
     */
    kind: z.enum(["app", "ssh", "host"]).default("app"),
    app_id: z.string().max(64).default(""),
    ssh: z
      .object({ host: z.string().max(253), port: z.number().int().min(1).max(65535), username: z.string().max(64), host_key_fingerprint: z.string().max(128).nullable() })
      .optional(),
    cmd: z.array(z.string().max(1024)).min(1).max(64),
    cols: z.number().int().min(1).max(1000),
    rows: z.number().int().min(1).max(1000),
  }),
  /** The answer to a `report`: `status` as the HTTP route would give it (200, 400, 409), `body` its JSON. */
  z.object({ type: z.literal("reply"), id: z.number().int(), status: z.number().int(), body: z.unknown() }),
  z.object({ type: z.literal("error"), message: z.string() }),
]);
export type ServerMessage = z.infer<typeof ServerMessage>;
export type RpcMethod = "app.logs" | "app.stats" | "host.containers";

/** A lease the agent still works on, named when it (re)connects or claims. */
export const HeldLease = z.object({ job_id: z.string().max(64), lease_id: z.string().max(64) });
export type HeldLease = z.infer<typeof HeldLease>;

/** What a Proxmox node offers instances: placement needs its templates and room. */
export const ProxmoxFacts = z
  .object({
    node: z.string().max(64),
    /** Names of the VM templates on the node (an OS image's `template` must be among them). */
    templates: z.array(z.string().max(128)).max(1000),
    storage: z.string().max(64).optional(),
    storage_bytes: z.number().nonnegative().optional(),
    storage_free_bytes: z.number().nonnegative().optional(),
  })
  .strict();
export type ProxmoxFacts = z.infer<typeof ProxmoxFacts>;

export const HostFacts = z
  .object({
    hostname: z.string().max(255).optional(),
    os: z.string().max(255).optional(),
    arch: z.string().max(64).optional(),
    cpus: z.number().int().nonnegative().optional(),
    memory_bytes: z.number().nonnegative().optional(),
    disk_bytes: z.number().nonnegative().optional(),
    disk_free_bytes: z.number().nonnegative().optional(),
    docker_version: z.string().max(64).nullable().optional(),
    proxmox_version: z.string().max(64).nullable().optional(),
    /** A Proxmox node: its name, the VM templates it can clone, and its VM storage. */
    proxmox: ProxmoxFacts.optional(),
  })
  .strict();
export type HostFacts = z.infer<typeof HostFacts>;

/** The most lines one `app_log` message may carry; the agent sends a bigger backlog in several. */
export const APP_LOG_BATCH_MAX = 1000;
export const AppLogLine = z.object({ time: z.string().max(40), stream: z.enum(["stdout", "stderr"]), text: z.string().max(64 * 1024) });
export type AppLogLine = z.infer<typeof AppLogLine>;

/** Agent → control plane over the WebSocket. Leases are pushed only after `hello`. */
export const AgentMessage = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("hello"),
    agent_version: z.string().max(64),
    facts: HostFacts.optional(),
    held: z.array(HeldLease).max(256).default([]),
  }),
  z.object({ type: z.literal("heartbeat"), agent_version: z.string().max(64), facts: HostFacts.optional() }),
  /**
   * A report about a lease over the socket, the same as POST /agent/leases/{lease}/{op}
   * with `body`, without a round trip through the HTTP front door. Answered by a `reply` with the same `id`.
   */
  z.object({
    type: z.literal("report"),
    id: z.number().int(),
    lease_id: z.string().max(64),
    op: z.enum(["start", "renew", "logs", "finish"]),
    body: z.unknown().optional(),
  }),
  z.object({ type: z.literal("rpc_reply"), id: z.string().max(64), ok: z.boolean(), result: z.unknown().optional(), error: z.string().max(2000).optional() }),
  /** Lines of a followed app's container, in order. */
  z.object({ type: z.literal("app_log"), app_id: z.string().max(64), lines: z.array(AppLogLine).max(APP_LOG_BATCH_MAX) }),
]);
export type AgentMessage = z.infer<typeof AgentMessage>;

export const ClaimRequest = z.object({
  held: z.array(HeldLease).max(256).default([]),
  /** Seconds to wait for work when there is none (long-poll). */
  wait: z.number().int().min(0).max(30).default(25),
});
export const ClaimResponse = z.object({ leases: z.array(Lease) });

export const JoinRequest = z.object({
  join_token: z.string().min(1).max(200),
  agent_version: z.string().max(64),
  facts: HostFacts.optional(),
});
export const JoinResponse = z.object({
  host_id: z.string(),
  /** The host credential (`bha_…`): shown once, kept by the agent in its state directory. */
  credential: z.string(),
  heartbeat_interval: z.number().int(),
});

export const HeartbeatRequest = z.object({
  agent_version: z.string().max(64),
  facts: HostFacts.optional(),
});

export const LogChunk = z.object({
  /** Per job and attempt, starting at 0, one more per chunk. */
  seq: z.number().int().min(0),
  stream: z.enum(["stdout", "stderr"]),
  /** Byte offset of this chunk's first byte within its stream. */
  offset: z.number().int().min(0),
  data: z.string().max(256 * 1024),
});
export type LogChunk = z.infer<typeof LogChunk>;

export const LogAppendRequest = z.object({ chunks: z.array(LogChunk).min(1).max(64) });
/** What the control plane holds per stream after an append: resend from `expected` if it is behind what you sent. */
export const LogAppendResponse = z.object({
  expected: z.object({ stdout: z.number().int(), stderr: z.number().int() }),
  gap: z.boolean(),
});

export const RenewRequest = z.object({ progress: JobProgress.optional() });
export const FinishRequest = z.object({
  status: z.enum(["succeeded", "failed"]),
  error: z.string().max(4000).nullable().optional(),
  /** Flat facts about the outcome, such as `exit_code`. */
  result: z.record(z.string().max(64), z.union([z.string().max(1000), z.number(), z.boolean(), z.null()])).nullable().optional(),
});
export type FinishRequest = z.infer<typeof FinishRequest>;

/** What the agent sees of the apps on its host: on every container event, and every 30 s with stats. */
export const AppReport = z.object({
  apps: z
    .array(
      z.object({
        app_id: z.string().max(64),
        container_id: z.string().max(128),
        /** Docker's state: created, running, paused, restarting, removing, exited, dead. */
        state: z.string().max(32),
        /** Stopped by sleep on idle, its route at the agent's wake listener (absent from agents without sleep on idle). */
        sleeping: z.boolean().optional(),
        /** The last request Caddy logged for the app's host name since the agent started. */
        last_request_at: z.string().datetime().nullable().optional(),
        stats: z
          .object({
            cpu_percent: z.number().min(0),
            memory_mb: z.number().min(0),
            memory_max_mb: z.number().min(0),
            net_rx_bytes: z.number().min(0),
            net_tx_bytes: z.number().min(0),
          })
          .nullable()
          .optional(),
        /**
         * The app's current replica set (the containers of its newest deployment): their ids, how
         * many run, and the deployment. `container_id` is then the first running replica, `state`
         * running when any replica runs, and `stats` the sum over the running replicas.
         */
        replicas: z
          .object({
            deployment_id: z.string().max(64).nullable(),
            ids: z.array(z.string().max(128)).max(64),
            running: z.number().int().min(0).max(64),
          })
          .optional(),
      }),
    )
    .max(1000),
  /** The apps' named volumes on this host and the bytes each holds (with the periodic sweep). */
  volumes: z
    .array(z.object({ app_id: z.string().max(64), name: z.string().max(128), used_bytes: z.number().int().min(0).nullable() }))
    .max(1000)
    .optional(),
});
export type AppReport = z.infer<typeof AppReport>;

/**
 * The VMs Berth made on a Proxmox node, as the agent's sweep found them (every 30 s). The
 * list is complete: an instance of this host whose VM is not in it is gone from the node.
 */
export const InstanceReport = z.object({
  /** How long before sending the node's list was read: an instance changed since then is left as it is. */
  observed_ms_ago: z.number().int().min(0).max(600_000),
  vms: z
    .array(
      z.object({
        vmid: z.number().int().min(100).max(999_999_999),
        /** Proxmox's status: running or stopped. */
        status: z.string().max(32),
        /** The VM's Berth tags (`berth`, `berth-<instance id>`). */
        tags: z.array(z.string().max(128)).max(32),
      }),
    )
    .max(5000),
});
export type InstanceReport = z.infer<typeof InstanceReport>;

/**
 * A terminal session's own socket between the agent and the session's Durable Object
 * (`/agent/terminals/{session}`). Binary frames are the bytes: the TTY's output from the
 * agent, the user's input to it, in order. Text frames are these control messages.
 *
 * Flow control: the agent sends at most TERMINAL_WINDOW_BYTES of output beyond what the
 * session acknowledged (`ack`, the total bytes it passed on) and pauses reading the TTY
 * meanwhile, so a flood (`yes`) waits in the program's own pipe rather than in memory.
 */
export const TERMINAL_WINDOW_BYTES = 256 * 1024;

/** Session → agent. */
export const TerminalServerFrame = z.discriminatedUnion("type", [
  z.object({ type: z.literal("resize"), cols: z.number().int().min(1).max(1000), rows: z.number().int().min(1).max(1000) }),
  z.object({ type: z.literal("ack"), bytes: z.number().int().nonnegative() }),
  /** End the program (the session closed: the user left, it idled, or was replaced). */
  z.object({ type: z.literal("close"), reason: z.string().max(200) }),
]);
export type TerminalServerFrame = z.infer<typeof TerminalServerFrame>;

/** Agent → session. */
export const TerminalAgentFrame = z.discriminatedUnion("type", [
  /** The program runs; output follows as binary frames. */
  z.object({
    type: z.literal("started"),
    container_id: z.string().max(128).optional(),
    /** An SSH session: the server's key (`SHA256:…`), pinned on a profile that had none. */
    host_key_fingerprint: z.string().max(128).optional(),
  }),
  /**
   * It could not start: `not_running` (no running container for the app), `exec_failed`, or for
   * an SSH session the failure codes of `ssh.exec` (SSH_FAILURES).
   */
  z.object({
    type: z.literal("error"),
    code: z.enum(["not_running", "exec_failed", "host_key_mismatch", "ssh_auth_failed", "ssh_unreachable", "ssh_timeout", "ssh_failed"]),
    message: z.string().max(2000),
  }),
  /** The program ended with this status (null when Docker could not say). */
  z.object({ type: z.literal("exit"), code: z.number().int().nullable() }),
]);
export type TerminalAgentFrame = z.infer<typeof TerminalAgentFrame>;

/** The secrets of an `ssh.exec` lease (`ssh` in `GET /agent/leases/{lease}/env`). */
export const SshSecrets = z.object({
  password: z.string().max(4096).optional(),
  /** OpenSSH or PEM private key text. */
  private_key: z.string().max(16_384).optional(),
  passphrase: z.string().max(4096).optional(),
});
export type SshSecrets = z.infer<typeof SshSecrets>;

/** What an `ssh.exec` command printed, cut at `output_max_bytes` a stream. */
export const CommandOutputReport = z.object({
  stdout: z.string().max(1024 * 1024),
  stderr: z.string().max(1024 * 1024),
  truncated: z.boolean(),
  exit_code: z.number().int().nullable(),
  duration_ms: z.number().int().min(0),
});
export type CommandOutputReport = z.infer<typeof CommandOutputReport>;

/** Why an `ssh.exec` job failed, as the first word of its error (`host_key_mismatch: …`). */
export const SSH_FAILURES = ["host_key_mismatch", "ssh_auth_failed", "ssh_unreachable", "ssh_timeout", "ssh_failed"] as const;
export type SshFailure = (typeof SSH_FAILURES)[number];
