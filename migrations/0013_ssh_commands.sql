CREATE TABLE `command` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`user_id` text NOT NULL,
	`profile_id` text,
	`host_id` text,
	`job_id` text,
	`session_id` text,
	`command` text NOT NULL,
	`timeout_seconds` integer NOT NULL,
	`status` text DEFAULT 'pending' NOT NULL,
	`stdout` text,
	`stderr` text,
	`output_truncated` integer DEFAULT false NOT NULL,
	`exit_code` integer,
	`duration_ms` integer,
	`error` text,
	`rerun_of` text,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`executed_at` integer,
	`finished_at` integer,
	FOREIGN KEY (`org_id`) REFERENCES `org`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`user_id`) REFERENCES `user`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`profile_id`) REFERENCES `ssh_profile`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE INDEX `command_user_idx` ON `command` (`user_id`,`org_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `command_job_idx` ON `command` (`job_id`);--> statement-breakpoint
CREATE TABLE `ssh_profile` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`user_id` text NOT NULL,
	`name` text NOT NULL,
	`host` text NOT NULL,
	`port` integer DEFAULT 22 NOT NULL,
	`username` text NOT NULL,
	`via_host_id` text,
	`secret_ciphertext` text,
	`has_password` integer DEFAULT false NOT NULL,
	`has_private_key` integer DEFAULT false NOT NULL,
	`host_key_fingerprint` text,
	`host_key_pinned_at` integer,
	`adhoc` integer DEFAULT false NOT NULL,
	`last_connected_at` integer,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`updated_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	FOREIGN KEY (`org_id`) REFERENCES `org`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`user_id`) REFERENCES `user`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`via_host_id`) REFERENCES `host`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE INDEX `ssh_profile_user_idx` ON `ssh_profile` (`user_id`,`org_id`);