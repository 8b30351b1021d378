ALTER TABLE `app` ADD `git_webhook_secret_ciphertext` text;--> statement-breakpoint
ALTER TABLE `deployment` ADD `commit_sha` text;