% rebase('base.tpl', title=title, ctx=ctx, tab='albums', body_class='grid-page', feeds=[f'/album/{album.id}/feed.atom'] if album.is_public else [])
<section class="page-head album-head">
  <div>
    <h1>{{album.title}}</h1>
    <p class="meta">{{len(entries)}} {{'photo' if len(entries) == 1 else 'photos'}}
% if ctx.viewer.is_member:
      · <span class="badge {{'public' if album.is_public else 'private'}}">{{'Public' if album.is_public else 'Private'}}</span>
%   if owner:
      · by {{owner}}
%   end
% end
    </p>
% if album.description:
    <p class="description">{{album.description}}</p>
% end
  </div>
  <div class="actions">
% if entries:
    <details class="menu">
      <summary class="button quiet">Download</summary>
      <div class="menu-body">
        <a href="{{ctx.root}}{{ctx.url(f'/album/{album.id}/download?what=pictures')}}" download>Pictures (zip)</a>
        <a href="{{ctx.root}}{{ctx.url(f'/album/{album.id}/download?what=raws')}}" download>RAW files (zip)</a>
        <a href="{{ctx.root}}{{ctx.url(f'/album/{album.id}/download?what=both')}}" download>Everything (zip)</a>
      </div>
    </details>
% end
% if album.is_public and ctx.shared is None:
    <a class="button quiet" href="{{ctx.root}}/album/{{album.id}}/feed.atom">Feed</a>
% end
% if ctx.viewer.is_member and ctx.shared is None:
    <details class="panel wide">
      <summary class="button">Edit</summary>
      <form method="post" action="{{ctx.root}}/album/{{album.id}}" class="stack">
        <input type="hidden" name="csrf" value="{{ctx.csrf_token}}">
        <input type="hidden" name="action" value="edit">
        <label>Title <input name="title" value="{{album.title}}" required maxlength="{{limits.MAX_ALBUM_TITLE}}"></label>
        <label>Description <textarea name="description" rows="3" maxlength="{{limits.MAX_DESCRIPTION}}">{{album.description}}</textarea></label>
        <button type="submit">Save</button>
      </form>
      <form method="post" action="{{ctx.root}}/album/{{album.id}}" class="row">
        <input type="hidden" name="csrf" value="{{ctx.csrf_token}}">
        <input type="hidden" name="action" value="visibility">
        <input type="hidden" name="public" value="{{'0' if album.is_public else '1'}}">
        <span>{{'Anyone can see this album.' if album.is_public else 'Only members can see this album.'}}</span>
        <button type="submit" data-testid="visibility">{{'Make private' if album.is_public else 'Make public'}}</button>
      </form>
%   # A link made while private stays shown (and revocable) while the album is public: it works again
%   # the moment the album is made private, and nobody should have to remember it is there.
%   if not album.is_public or album.share_token:
      <form method="post" action="{{ctx.root}}/album/{{album.id}}" class="row">
        <input type="hidden" name="csrf" value="{{ctx.csrf_token}}">
%     if album.share_token:
        <input type="hidden" name="action" value="unshare">
        <label class="grow">Share link <input readonly class="copy" value="{{ctx.absolute("/s/" + album.share_token)}}"></label>
        <button type="submit">Revoke link</button>
%     else:
        <input type="hidden" name="action" value="share">
        <span>Share this album with people who have no account.</span>
        <button type="submit">Make a share link</button>
%     end
      </form>
%   end
%   if may_delete:
      <form method="post" action="{{ctx.root}}/album/{{album.id}}" class="row" data-confirm="Delete the album “{{album.title}}”? Its photos stay in the library.">
        <input type="hidden" name="csrf" value="{{ctx.csrf_token}}">
        <input type="hidden" name="action" value="delete">
        <span>Delete the album; its photos stay in the library.</span>
        <button type="submit" class="danger">Delete album</button>
      </form>
%   end
    </details>
% end
  </div>
</section>
% if not entries:
<section class="empty narrow"><p>This album is empty.
% if ctx.viewer.is_member:
  <a href="{{ctx.root}}/upload?album={{album.id}}">Upload photos into it</a>.
% end
</p></section>
% end
<div id="album-grid" class="pig-grid" data-album="{{album.id}}"></div>
<script type="application/json" id="album-photos">{{!json_for_script(entries)}}</script>
<script type="application/json" id="grid-config">{{!json_for_script(grid)}}</script>
<script src="{{ctx.root}}/static/vendor/pig.js" defer></script>
<script src="{{ctx.root}}/static/js/grid.js" defer></script>
