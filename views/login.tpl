% rebase('base.tpl', title=title, ctx=ctx)
<section class="narrow auth">
  <h1>Log in</h1>
% if error:
  <p class="error" role="alert">{{error}}</p>
% end
  <form method="post" action="{{ctx.root}}/login" class="stack">
    <input type="hidden" name="csrf" value="{{ctx.csrf_token}}">
    <input type="hidden" name="next" value="{{next}}">
    <label>Name <input name="name" value="{{name}}" autocomplete="username" autocapitalize="none" required autofocus></label>
    <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
    <button type="submit">Log in</button>
  </form>
</section>
