CREATE TABLE `instance` (
	`id` text PRIMARY KEY NOT NULL,
	`project_id` text NOT NULL,
	`org_id` text NOT NULL,
	`name` text NOT NULL,
	`status` text DEFAULT 'queued' NOT NULL,
	`power_state` text DEFAULT 'unknown' NOT NULL,
	`backup_tier` text DEFAULT 'none' NOT NULL,
	`error_code` text,
	`error_message` text,
	`plan_code` text NOT NULL,
	`image_id` text,
	`app_slug` text,
	`host_id` text,
	`node` text,
	`vmid` integer,
	`ipv4` text,
	`root_password_ciphertext` text,
	`job_password_ciphertext` text,
	`ssh_keys` text DEFAULT '[]' NOT NULL,
	`networks` text DEFAULT '[]' NOT NULL,
	`active_job_id` text,
	`active_job_type` text,
	`created_by` text,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`updated_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`deleted_at` integer,
	FOREIGN KEY (`project_id`) REFERENCES `project`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`org_id`) REFERENCES `org`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`host_id`) REFERENCES `host`(`id`) ON UPDATE no action ON DELETE set null,
	FOREIGN KEY (`created_by`) REFERENCES `user`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE UNIQUE INDEX `instance_project_name_live_uq` ON `instance` (`project_id`,`name`) WHERE deleted_at IS NULL;--> statement-breakpoint
CREATE INDEX `instance_project_idx` ON `instance` (`project_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `instance_host_idx` ON `instance` (`host_id`);--> statement-breakpoint
CREATE TABLE `instance_event` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`id` text NOT NULL,
	`instance_id` text NOT NULL,
	`type` text NOT NULL,
	`message` text NOT NULL,
	`meta` text,
	`user_id` text,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	FOREIGN KEY (`instance_id`) REFERENCES `instance`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`user_id`) REFERENCES `user`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE UNIQUE INDEX `instance_event_id_unique` ON `instance_event` (`id`);--> statement-breakpoint
CREATE INDEX `instance_event_instance_idx` ON `instance_event` (`instance_id`,`seq`);