CREATE TABLE `app_sleep` (
	`app_id` text PRIMARY KEY NOT NULL,
	`sleeping` integer DEFAULT false NOT NULL,
	`changed_at` integer,
	`last_request_at` integer,
	`updated_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	FOREIGN KEY (`app_id`) REFERENCES `app`(`id`) ON UPDATE no action ON DELETE cascade
);
