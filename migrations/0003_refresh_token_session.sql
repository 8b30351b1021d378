ALTER TABLE `refresh_token` ADD `session_token_hash` text;--> statement-breakpoint
CREATE INDEX `refresh_token_session_idx` ON `refresh_token` (`session_token_hash`);