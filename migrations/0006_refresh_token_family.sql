ALTER TABLE `refresh_token` ADD `session_id` text;--> statement-breakpoint
ALTER TABLE `refresh_token` ADD `family_id` text;--> statement-breakpoint
CREATE INDEX `refresh_token_session_id_idx` ON `refresh_token` (`session_id`);--> statement-breakpoint
CREATE INDEX `refresh_token_family_idx` ON `refresh_token` (`family_id`);