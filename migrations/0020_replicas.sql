CREATE TABLE `app_replicas` (
	`app_id` text PRIMARY KEY NOT NULL,
	`desired` integer DEFAULT 1 NOT NULL,
	`running` integer,
	`changed_at` integer,
	`auto_changed_at` integer,
	`job_id` text,
	`job_at` integer,
	`updated_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	FOREIGN KEY (`app_id`) REFERENCES `app`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
ALTER TABLE `app_stat` ADD `replicas` integer;