-- The catalog Berth starts with: plans, OS images (each a VM template of that name on the
-- Proxmox nodes) and one-click apps. Operators change it with further migrations or SQL.
INSERT INTO `plan` (`id`, `code`, `name`, `family`, `vcpu`, `memory_mb`, `disk_gb`, `network_mbps`, `price_monthly_ore`, `price_hourly_ore`, `sort`) VALUES
  ('pln_bxs1', 'bxs-1', 'BXS 1', 'bxs', 1, 2048, 40, 10000, 4000, 6, 10),
  ('pln_bxs24', 'bxs-2-4', 'BXS 2', 'bxs', 2, 4096, 80, 10000, 7500, 11, 20),
  ('pln_bxs48', 'bxs-4-8', 'BXS 4', 'bxs', 4, 8192, 160, 10000, 14500, 20, 30),
  ('pln_bxs816', 'bxs-8-16', 'BXS 8', 'bxs', 8, 16384, 320, 10000, 28500, 40, 40);
--> statement-breakpoint
INSERT INTO `os_image` (`id`, `family`, `version`, `display_name`, `protocol`, `default_user`, `min_disk_gb`, `has_guest_agent`, `template`) VALUES
  ('img_ubuntu2404', 'ubuntu', '24.04', 'Ubuntu 24.04 LTS', 'ssh', 'ubuntu', 10, 1, 'berth-ubuntu-2404'),
  ('img_ubuntu2204', 'ubuntu', '22.04', 'Ubuntu 22.04 LTS', 'ssh', 'ubuntu', 10, 1, 'berth-ubuntu-2204'),
  ('img_debian12', 'debian', '12', 'Debian 12', 'ssh', 'debian', 8, 1, 'berth-debian-12');
--> statement-breakpoint
INSERT INTO `catalog_app` (`id`, `slug`, `version`, `name`, `description`, `logo`, `category`, `min_vcpu`, `min_memory_mb`, `min_disk_gb`, `image_family`, `image_version`) VALUES
  ('app_coolify', 'coolify', '4.1.0', 'Coolify', 'Self-hostable PaaS to deploy apps and databases.', NULL, 'panel', 2, 4096, 40, 'ubuntu', '24.04'),
  ('app_wordpress', 'wordpress', '6.7.1', 'WordPress', 'The blogging and website platform, with MariaDB.', NULL, 'cms', 1, 2048, 20, 'ubuntu', '24.04'),
  ('app_postgresql', 'postgresql', '17.2', 'PostgreSQL', 'The relational database, listening on 5432.', NULL, 'database', 1, 2048, 20, 'debian', '12');
