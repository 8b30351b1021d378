ALTER TABLE `app` ADD `git_account_id` text;--> statement-breakpoint
ALTER TABLE `account` ADD `username` text;