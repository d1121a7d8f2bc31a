% rebase('base.tpl', title=title, ctx=ctx, tab='photos', body_class='grid-page')
<div id="timeline" class="timeline" aria-label="Photos, newest first"></div>
<section class="empty narrow" id="empty" hidden>
% if ctx.viewer.is_member:
  <h1>No photos yet</h1>
  <p><a class="button" href="/upload">Upload photos</a> or import a folder on the server with <code>photoflow import-image</code>.</p>
% else:
  <h1>Nothing to see yet</h1>
  <p>There are no public photos here. <a href="/login">Log in</a> to see yours.</p>
% end
</section>
<script type="application/json" id="first-screen">{{!json_for_script(first)}}</script>
<script src="/static/vendor/pig.js" defer></script>
<script src="/static/js/grid.js" defer></script>
