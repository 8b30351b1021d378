CREATE TABLE `host` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`name` text NOT NULL,
	`kind` text NOT NULL,
	`region` text,
	`labels` text DEFAULT '{}' NOT NULL,
	`join_token_hash` text,
	`join_token_expires_at` integer,
	`credential_hash` text,
	`joined_at` integer,
	`last_seen_at` integer,
	`agent_version` text,
	`facts` text,
	`created_by` text,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`deleted_at` integer,
	FOREIGN KEY (`org_id`) REFERENCES `org`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`created_by`) REFERENCES `user`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE UNIQUE INDEX `host_join_token_hash_unique` ON `host` (`join_token_hash`);--> statement-breakpoint
CREATE UNIQUE INDEX `host_credential_hash_unique` ON `host` (`credential_hash`);--> statement-breakpoint
CREATE INDEX `host_org_idx` ON `host` (`org_id`);