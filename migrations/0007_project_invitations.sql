ALTER TABLE `invitation` ADD `project_id` text REFERENCES project(id) ON DELETE cascade;--> statement-breakpoint
CREATE INDEX `invitation_project_idx` ON `invitation` (`project_id`,`status`);