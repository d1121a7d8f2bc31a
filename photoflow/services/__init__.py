"""The use cases every door shares: the one application layer.

The web (photoflow/web/), ws.php (photoflow/piwigo/), the command line (cli.py) and the console
(admin_tui/) each parse their input, call one function from here, and render what comes back; none of
them writes a model or opens a transaction itself (tests/test_layers.py). Transactions live here, at
the service boundary; slow work (exiftool, Pillow, disk) never runs inside one.
"""

from photoflow.batch import RenderJob, render_jobs, render_photo
from photoflow.services.albums import (
    add_to_album,
    album_by_share_token,
    album_exists,
    album_for_import,
    albums,
    create_album,
    delete_album,
    edit_album,
    remove_from_album,
    set_album_visibility,
    set_cover,
    share_album,
    unshare_album,
)
from photoflow.services.photos import LEVELS, delete_photo, edit_photo, set_level, set_photo_albums
from photoflow.services.text import (
    MAX_ALBUM_TITLE,
    MAX_AUTHOR,
    MAX_DESCRIPTION,
    MAX_PHOTO_TITLE,
    MAX_TAG,
    MAX_USER_NAME,
    clean_text,
)
from photoflow.services.users import (
    authenticate,
    create_first_admin,
    create_user,
    default_owner,
    delete_user,
    needs_setup,
    set_admin,
    set_password,
    user_by_name,
    users,
)

__all__ = [
    "LEVELS",
    "MAX_ALBUM_TITLE",
    "MAX_AUTHOR",
    "MAX_DESCRIPTION",
    "MAX_PHOTO_TITLE",
    "MAX_TAG",
    "MAX_USER_NAME",
    "RenderJob",
    "add_to_album",
    "album_by_share_token",
    "album_exists",
    "album_for_import",
    "albums",
    "authenticate",
    "clean_text",
    "create_album",
    "create_first_admin",
    "create_user",
    "default_owner",
    "delete_album",
    "delete_photo",
    "delete_user",
    "edit_album",
    "edit_photo",
    "needs_setup",
    "remove_from_album",
    "render_jobs",
    "render_photo",
    "set_admin",
    "set_album_visibility",
    "set_cover",
    "set_level",
    "set_password",
    "set_photo_albums",
    "share_album",
    "unshare_album",
    "user_by_name",
    "users",
]
