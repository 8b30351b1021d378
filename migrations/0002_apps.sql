CREATE TABLE `app` (
	`id` text PRIMARY KEY NOT NULL,
	`project_id` text NOT NULL,
	`org_id` text NOT NULL,
	`name` text NOT NULL,
	`slug` text NOT NULL,
	`image` text NOT NULL,
	`internal_port` integer DEFAULT 8080 NOT NULL,
	`env_ciphertext` text,
	`env_keys` text DEFAULT '[]' NOT NULL,
	`command` text,
	`cpu_limit` real DEFAULT 0.5 NOT NULL,
	`memory_limit` integer DEFAULT 512 NOT NULL,
	`gpu_enabled` integer DEFAULT false NOT NULL,
	`git_repo_url` text,
	`git_branch` text,
	`git_provider` text,
	`host_id` text,
	`status` text DEFAULT 'created' NOT NULL,
	`container_id` text,
	`host_port` integer,
	`cpu_usage` real,
	`memory_usage` real,
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
CREATE UNIQUE INDEX `app_slug_live_uq` ON `app` (`slug`) WHERE deleted_at IS NULL;--> statement-breakpoint
CREATE INDEX `app_project_idx` ON `app` (`project_id`);--> statement-breakpoint
CREATE INDEX `app_host_idx` ON `app` (`host_id`);--> statement-breakpoint
CREATE TABLE `app_event` (
	`id` text PRIMARY KEY NOT NULL,
	`app_id` text NOT NULL,
	`type` text NOT NULL,
	`message` text NOT NULL,
	`data` text,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	FOREIGN KEY (`app_id`) REFERENCES `app`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `app_event_app_idx` ON `app_event` (`app_id`,`created_at`);--> statement-breakpoint
CREATE TABLE `deployment` (
	`id` text PRIMARY KEY NOT NULL,
	`app_id` text NOT NULL,
	`image` text NOT NULL,
	`status` text DEFAULT 'pending' NOT NULL,
	`job_id` text,
	`host_id` text,
	`container_id` text,
	`error` text,
	`created_by` text,
	`started_at` integer,
	`finished_at` integer,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	FOREIGN KEY (`app_id`) REFERENCES `app`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `deployment_app_idx` ON `deployment` (`app_id`,`created_at`);