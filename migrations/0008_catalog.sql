CREATE TABLE `catalog_app` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`id` text NOT NULL,
	`slug` text NOT NULL,
	`version` text NOT NULL,
	`name` text NOT NULL,
	`description` text NOT NULL,
	`logo` text,
	`category` text NOT NULL,
	`min_vcpu` integer NOT NULL,
	`min_memory_mb` integer NOT NULL,
	`min_disk_gb` integer NOT NULL,
	`image_family` text NOT NULL,
	`image_version` text NOT NULL,
	`active` integer DEFAULT true NOT NULL
);
--> statement-breakpoint
CREATE INDEX `catalog_app_slug_idx` ON `catalog_app` (`slug`,`active`);--> statement-breakpoint
CREATE TABLE `os_image` (
	`id` text PRIMARY KEY NOT NULL,
	`family` text NOT NULL,
	`version` text NOT NULL,
	`display_name` text NOT NULL,
	`protocol` text NOT NULL,
	`default_user` text NOT NULL,
	`min_disk_gb` integer NOT NULL,
	`has_guest_agent` integer NOT NULL,
	`template` text NOT NULL,
	`active` integer DEFAULT true NOT NULL
);
--> statement-breakpoint
CREATE INDEX `os_image_family_idx` ON `os_image` (`family`,`version`);--> statement-breakpoint
CREATE TABLE `plan` (
	`id` text PRIMARY KEY NOT NULL,
	`code` text NOT NULL,
	`name` text NOT NULL,
	`family` text NOT NULL,
	`vcpu` integer NOT NULL,
	`memory_mb` integer NOT NULL,
	`disk_gb` integer NOT NULL,
	`network_mbps` integer NOT NULL,
	`price_monthly_ore` integer NOT NULL,
	`price_hourly_ore` integer NOT NULL,
	`sort` integer NOT NULL,
	`active` integer DEFAULT true NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `plan_code_unique` ON `plan` (`code`);--> statement-breakpoint
CREATE INDEX `plan_active_sort_idx` ON `plan` (`active`,`sort`);