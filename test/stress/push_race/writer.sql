SELECT race_write();
