CREATE TABLE `ai_key` (
	`user_id` text PRIMARY KEY NOT NULL,
	`encrypted` text NOT NULL,
	`hint` text NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`updated_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `user`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `device` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`device_id` text NOT NULL,
	`device_type` text DEFAULT 'other' NOT NULL,
	`device_name` text,
	`last_active_at` integer NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `user`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `device_user_device_uq` ON `device` (`user_id`,`device_id`);--> statement-breakpoint
CREATE TABLE `subscription_plan` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`price` real NOT NULL,
	`features` text DEFAULT '[]' NOT NULL,
	`position` integer DEFAULT 0 NOT NULL,
	`active` integer DEFAULT true NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL
);
--> statement-breakpoint
CREATE TABLE `sync_conflict` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`data_type` text NOT NULL,
	`item_key` text NOT NULL,
	`conflict_type` text NOT NULL,
	`local_data` text NOT NULL,
	`local_device_id` text,
	`local_version` integer,
	`remote_data` text NOT NULL,
	`remote_device_id` text,
	`remote_version` integer NOT NULL,
	`remote_updated_at` integer NOT NULL,
	`resolution` text,
	`resolved_at` integer,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `user`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `sync_conflict_user_idx` ON `sync_conflict` (`user_id`,`resolved_at`);--> statement-breakpoint
CREATE TABLE `sync_event` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`device_id` text,
	`direction` text NOT NULL,
	`outcome` text NOT NULL,
	`conflicts` integer DEFAULT 0 NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `user`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `sync_event_user_idx` ON `sync_event` (`user_id`,`created_at`);--> statement-breakpoint
CREATE TABLE `sync_item` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`data_type` text NOT NULL,
	`item_key` text NOT NULL,
	`data` text NOT NULL,
	`version` integer DEFAULT 1 NOT NULL,
	`deleted_at` integer,
	`updated_by_device` text,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`updated_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `user`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `sync_item_user_key_uq` ON `sync_item` (`user_id`,`data_type`,`item_key`);--> statement-breakpoint
CREATE INDEX `sync_item_user_updated_idx` ON `sync_item` (`user_id`,`updated_at`);--> statement-breakpoint
INSERT INTO `subscription_plan` (`id`, `name`, `price`, `features`, `position`) VALUES
	('free', 'Free', 0, '["AI with your own OpenRouter key","Command history","One device"]', 0),
	('pro', 'Pro', 12, '["Everything in Free","Sync across unlimited devices","Conflict resolution","Saved SSH profiles"]', 1),
	('team', 'Team', 25, '["Everything in Pro","Shared org hosts and SSH profiles","Audit log"]', 2),
	('enterprise', 'Enterprise', 99, '["Everything in Team","SSO and SCIM","Priority support"]', 3);
--> statement-breakpoint
ALTER TABLE `user` ADD `role` text;--> statement-breakpoint
ALTER TABLE `user` ADD `banned` integer DEFAULT false;--> statement-breakpoint
ALTER TABLE `user` ADD `ban_reason` text;--> statement-breakpoint
ALTER TABLE `user` ADD `ban_expires` integer;--> statement-breakpoint
ALTER TABLE `session` ADD `impersonated_by` text;
