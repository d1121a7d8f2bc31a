"""What Piwigo clients ask for that Photoflow did not keep: a photo's author, and each file's MD5.

Piwigo identifies files by MD5 (`pwg.images.exist`, `pwg.images.add`'s `original_sum`); Photoflow
names them by SHA-256 and now records the MD5 beside it as files arrive. Files stored before this
migration have none, and are simply not found by MD5.
"""


def up(migrator, db):
    db.execute_sql("ALTER TABLE photo ADD COLUMN author VARCHAR(200) NOT NULL DEFAULT ''")
    db.execute_sql("ALTER TABLE file ADD COLUMN md5 VARCHAR(32)")
    db.execute_sql("CREATE INDEX file_md5 ON file (md5)")
    db.execute_sql("CREATE INDEX file_original_name ON file (original_name)")
