% from photoflow import urls
% rebase('base.tpl', title=title, ctx=ctx, tab='albums')
<section class="page-head">
  <h1>Albums</h1>
% if ctx.viewer.is_member:
  <details class="panel">
    <summary class="button">New album</summary>
    <form method="post" action="{{ctx.root}}/albums" class="stack">
      <input type="hidden" name="csrf" value="{{ctx.csrf_token}}">
      <label>Title <input name="title" required maxlength="{{limits.MAX_ALBUM_TITLE}}" autocomplete="off"></label>
      <label class="check"><input type="checkbox" name="public" value="1"> Public: anyone can see it</label>
      <button type="submit">Create</button>
    </form>
  </details>
% end
</section>
% if not cards:
<section class="empty narrow"><p>No albums yet.</p></section>
% end
<ul class="cards">
% for card in cards:
  <li class="card">
    <a href="{{ctx.root}}/album/{{card.album.id}}">
%   if card.cover:
      <img src="{{ctx.root}}{{urls.derivative(card.cover.id, card.cover.sha, 250)}}" alt="" loading="lazy">
%   else:
      <span class="no-cover" aria-hidden="true"></span>
%   end
      <span class="card-title">{{card.album.title}}</span>
    </a>
    <span class="card-meta">{{card.count}} {{'photo' if card.count == 1 else 'photos'}}
%   if ctx.viewer.is_member:
      <span class="badge {{'public' if card.album.is_public else 'private'}}">{{'Public' if card.album.is_public else 'Private'}}</span>
%     if card.album.share_token:
      <span class="badge shared">Link</span>
%     end
%   end
    </span>
  </li>
% end
</ul>
