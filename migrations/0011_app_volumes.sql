CREATE TABLE `app_volume` (
	`id` text PRIMARY KEY NOT NULL,
	`app_id` text NOT NULL,
	`name` text NOT NULL,
	`mount_path` text NOT NULL,
	`size_mb` integer DEFAULT 1024 NOT NULL,
	`used_bytes` integer,
	`measured_at` integer,
	`detached_at` integer,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	FOREIGN KEY (`app_id`) REFERENCES `app`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `app_volume_path_uq` ON `app_volume` (`app_id`,`mount_path`);--> statement-breakpoint
CREATE UNIQUE INDEX `app_volume_name_uq` ON `app_volume` (`name`);