CREATE TABLE `app_autoscale` (
	`app_id` text PRIMARY KEY NOT NULL,
	`enabled` integer DEFAULT false NOT NULL,
	`cpu_threshold` real DEFAULT 80 NOT NULL,
	`min_replicas` integer DEFAULT 1 NOT NULL,
	`max_replicas` integer DEFAULT 3 NOT NULL,
	`cooldown_seconds` integer DEFAULT 300 NOT NULL,
	`sleep_after_minutes` integer DEFAULT 0 NOT NULL,
	`updated_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	FOREIGN KEY (`app_id`) REFERENCES `app`(`id`) ON UPDATE no action ON DELETE cascade
);
