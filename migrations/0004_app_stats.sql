CREATE TABLE `app_stat` (
	`app_id` text NOT NULL,
	`at` integer NOT NULL,
	`cpu_percent` real NOT NULL,
	`memory_mb` real NOT NULL,
	`memory_max_mb` real NOT NULL,
	`net_rx_bytes` integer NOT NULL,
	`net_tx_bytes` integer NOT NULL,
	FOREIGN KEY (`app_id`) REFERENCES `app`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `app_stat_app_at_idx` ON `app_stat` (`app_id`,`at`);